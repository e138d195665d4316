"""The event catalogue: every event name the relay has settled, with how often, when last
and from which kinds of source, kept current by the drain in its per-batch MULTI.

One hash at ``keys.catalogue`` holds three fields per name: ``c:<name>`` (count),
``l:<name>`` (last seen, Unix seconds) and ``k:<name>`` (kinds: 1 server, 2 client, 3
both). At most ``CATALOGUE_MAX`` names are kept; events with other new names are counted
under ``OTHER``, so an attacker sending random names cannot grow Redis without bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from worker.keys import Keys

CATALOGUE_MAX = 10_000
OTHER = "\x00other"
KIND_BITS = {"server": 1, "client": 2}
KIND_NAMES = {1: "server", 2: "client", 3: "both"}

# KEYS[1] the catalogue hash; ARGV[1] the cap on names, ARGV[2] the time, ARGV[3] a JSON
# list of [name, count, kind bits] for one batch.
_NOTE = """
local key, cap, now = KEYS[1], tonumber(ARGV[1]) * 3, ARGV[2]
for _, row in ipairs(cjson.decode(ARGV[3])) do
  local name = row[1]
  if redis.call('HEXISTS', key, 'c:' .. name) == 0 and redis.call('HLEN', key) >= cap then
    name = ARGV[4]
  end
  redis.call('HINCRBY', key, 'c:' .. name, row[2])
  redis.call('HSET', key, 'l:' .. name, now)
  local kinds = tonumber(redis.call('HGET', key, 'k:' .. name) or '0')
  for _, b in ipairs({1, 2}) do
    if row[3] % (2 * b) >= b and kinds % (2 * b) < b then kinds = kinds + b end
  end
  redis.call('HSET', key, 'k:' .. name, kinds)
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Seen:
    """One catalogue row: an event name and what the relay has seen of it."""

    name: str
    count: int
    last_seen: float | None
    kinds: str  # "server", "client", "both" or "" (never seen)


def batch_rows(seen: Iterable[tuple[str | None, str]]) -> list[list[Any]]:
    """One batch's (name, source kind) pairs as ``[name, count, kind bits]`` rows."""
    counts: Counter[str] = Counter()
    bits: dict[str, int] = {}
    for name, kind in seen:
        if not name:
            continue
        counts[name] += 1
        bits[name] = bits.get(name, 0) | KIND_BITS.get(kind, 1)
    return [[name, n, bits[name]] for name, n in counts.items()]


def note(
    pipe: redis.client.Pipeline,
    keys: Keys,
    seen: Iterable[tuple[str | None, str]],
    now: float,
    cap: int = CATALOGUE_MAX,
) -> None:
    """Queue one command adding a batch's names to the catalogue (nothing when none)."""
    rows = batch_rows(seen)
    if rows:
        pipe.eval(_NOTE, 1, keys.catalogue, cap, f"{now:.3f}", orjson.dumps(rows), OTHER)


def read(client: redis.Redis, keys: Keys) -> dict[str, Seen]:
    """Every catalogue row by name (``OTHER`` included when the cap was reached)."""
    raw: Any = client.hgetall(keys.catalogue)
    counts: dict[bytes, bytes] = {}
    lasts: dict[bytes, bytes] = {}
    kinds: dict[bytes, bytes] = {}
    by_prefix = {b"c:": counts, b"l:": lasts, b"k:": kinds}
    for field, value in (raw or {}).items():
        field = field if isinstance(field, bytes) else field.encode()
        target = by_prefix.get(field[:2])
        if target is not None:
            target[field[2:]] = value
    return {
        (name := key.decode(errors="replace")): _seen(name, count, lasts.get(key), kinds.get(key))
        for key, count in counts.items()
    }


def read_one(client: redis.Redis, keys: Keys, name: str) -> Seen | None:
    """One name's catalogue row, or None when the relay has not seen it."""
    fields = [f"c:{name}", f"l:{name}", f"k:{name}"]
    count, last, kinds = client.hmget(keys.catalogue, fields)
    return None if count is None else _seen(name, count, last, kinds)


def _seen(name: str, count: Any, last: Any, kinds: Any) -> Seen:
    return Seen(
        name,
        int(count),
        float(last) if last else None,
        KIND_NAMES.get(int(kinds or 0), ""),
    )
