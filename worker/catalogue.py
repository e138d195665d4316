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
from worker.redisconn import as_text

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
    fields = {as_text(k): as_text(v) for k, v in (raw or {}).items()}
    rows: dict[str, Seen] = {}
    for field, value in fields.items():
        if not field.startswith("c:"):
            continue
        name = field[2:]
        last = fields.get("l:" + name)
        kinds = int(fields.get("k:" + name, "0") or 0)
        rows[name] = Seen(
            name, int(value), float(last) if last else None, KIND_NAMES.get(kinds, "")
        )
    return rows
