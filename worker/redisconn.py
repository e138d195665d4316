"""The Redis client every part of the relay is handed (never created deep inside a stage).

Also the few typed readers of Redis replies. redis-py annotates replies for clients with
and without ``decode_responses`` (``bytes | str``, stream entries that may be ``None``);
the relay's clients never decode, so these helpers turn a reply into one precise shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from worker.settings import Settings

# The project's Redis settings (AOF everysec, noeviction), beside the package in a checkout.
REDIS_CONF = Path(__file__).resolve().parents[1] / "config" / "redis.conf"

# One stream entry as the relay reads it: its id as text and its raw fields.
StreamRow = tuple[str, dict[bytes, bytes]]


def connect(settings: Settings) -> redis.Redis:
    """A client for ``CIO_REDIS_URL`` with bounded timeouts and health checks."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=15,
        retry_on_timeout=True,
    )


def local_server_argv(binary: str, port: int, data_dir: Path) -> list[str]:
    """The command line of a redis-server on loopback ``port`` keeping its data (AOF) in
    ``data_dir``, with ``config/redis.conf`` when the checkout has it."""
    conf = [str(REDIS_CONF)] if REDIS_CONF.exists() else []
    return [binary, *conf, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir)]


def as_text(value: bytes | str) -> str:
    """A Redis reply (bytes from a client without decode_responses) as text."""
    return value.decode() if isinstance(value, bytes) else value


def as_bytes(value: bytes | str) -> bytes:
    """A Redis reply as bytes, whatever the client's decoding."""
    return value.encode() if isinstance(value, str) else value


def opt_text(value: bytes | str | None) -> str | None:
    """A nullable string reply (GET, HGET) as text, or None when the key is absent."""
    return None if value is None else as_text(value)


def get_text(client: redis.Redis, key: str) -> str | None:
    """GET ``key`` as text; None when it is absent."""
    return opt_text(client.get(key))


def hash_ints(client: redis.Redis, key: str) -> dict[str, int]:
    """HGETALL of a hash of integer counters, field names as text."""
    return {as_text(k): int(v) for k, v in client.hgetall(key).items()}


def stream_rows(entries: Iterable[Any] | None) -> list[StreamRow]:
    """Stream entries (XRANGE, XCLAIM, one stream of XREAD) as ``(id, fields)`` rows.

    Entries whose fields are gone (deleted while still pending) are left out.
    """
    rows: list[StreamRow] = []
    for eid, fields in entries or ():
        if eid is None or fields is None:
            continue
        rows.append((as_text(eid), {as_bytes(k): as_bytes(v) for k, v in fields.items()}))
    return rows


def read_rows(reply: Any) -> list[tuple[str, list[StreamRow]]]:
    """An XREAD / XREADGROUP reply (RESP2, the relay's protocol) as ``(stream, rows)`` pairs."""
    return [(as_text(stream), stream_rows(entries)) for stream, entries in reply or ()]


def stream_fields(fields: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """Fields for XADD (redis-py types them as an invariant dict of its own unions)."""
    out: dict[FieldT, EncodableT] = {}
    out.update(fields)
    return out
