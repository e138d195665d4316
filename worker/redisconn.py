"""The Redis clients every part of the relay is handed (never created deep inside a stage).

This is the one place that turns the settings into clients: the sync and asyncio clients,
Celery's broker URL and transport options (which Flower reads too). With
``CIO_REDIS_SENTINELS`` set they all find the primary through Redis Sentinel (redis-py's
``Sentinel``, kombu's ``sentinel://`` transport) and follow a failover without a restart;
the host in ``CIO_REDIS_URL`` is then never dialled, its db number and password still apply.
It also holds the durable acknowledgement (``WAIT`` for ``CIO_REDIS_MIN_REPLICAS``) and the
words for a refused write (``OOM``, ``MISCONF``…), shared by every writer.

Also the few typed readers of Redis replies. redis-py annotates replies for clients with
and without ``decode_responses`` (``bytes | str``, stream entries that may be ``None``);
the relay's clients never decode, so these helpers turn a reply into one precise shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
import redis.asyncio as aioredis
import redis.asyncio.client
import redis.asyncio.sentinel as aiosentinel
import redis.client
import redis.exceptions
import redis.sentinel
from redis.connection import parse_url
from redis.typing import EncodableT, FieldT

from worker.settings import Settings

# The project's Redis settings (AOF everysec, noeviction), beside the package in a checkout.
REDIS_CONF = Path(__file__).resolve().parents[1] / "config" / "redis.conf"

# One stream entry as the relay reads it: its id as text and its raw fields.
StreamRow = tuple[str, dict[bytes, bytes]]


# A Sentinel that does not answer within this is skipped for the next one.
SENTINEL_TIMEOUT_S = 2.0


def url_auth(url: str) -> dict[str, Any]:
    """What of ``CIO_REDIS_URL`` still applies behind Sentinel: db, username, password, TLS."""
    parsed = parse_url(url)
    out: dict[str, Any] = {"db": int(parsed.get("db") or 0)}
    for key in ("username", "password"):
        if parsed.get(key):
            out[key] = parsed[key]
    if url.startswith("rediss://"):
        out["ssl"] = True
    return out


def describe_target(settings: Settings) -> str:
    """Where the relay's Redis is, for messages (never the password)."""
    if settings.sentinel_addresses:
        hosts = ",".join(f"{h}:{p}" for h, p in settings.sentinel_addresses)
        return f"Sentinel master {settings.redis_master_name!r} via {hosts}"
    parsed = parse_url(settings.redis_url)
    where = parsed.get("path") or f"{parsed.get('host')}:{parsed.get('port', 6379)}"
    return f"{where} db {parsed.get('db') or 0}"


def connect(settings: Settings, *, socket_timeout: float = 30) -> redis.Redis:
    """A client for the relay's Redis with bounded timeouts and health checks: the primary
    that Sentinel names when ``CIO_REDIS_SENTINELS`` is set, else ``CIO_REDIS_URL``."""
    options: dict[str, Any] = {
        "socket_connect_timeout": 5,
        "socket_timeout": _beyond_wait(settings, socket_timeout),
        "health_check_interval": 15,
        "retry_on_timeout": True,
    }
    if not settings.sentinel_addresses:
        return redis.Redis.from_url(settings.redis_url, **options)
    sentinel = redis.sentinel.Sentinel(
        settings.sentinel_addresses,
        sentinel_kwargs=_sentinel_kwargs(),
        **url_auth(settings.redis_url),
        **options,
    )
    return sentinel.master_for(settings.redis_master_name, redis_class=redis.Redis)


def connect_async(settings: Settings, *, socket_timeout: float = 10) -> aioredis.Redis:
    """The asyncio twin of :func:`connect` (the collector)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": 2,
        "socket_timeout": _beyond_wait(settings, socket_timeout),
        "health_check_interval": 15,
    }
    if not settings.sentinel_addresses:
        return aioredis.Redis.from_url(settings.redis_url, **options)
    sentinel = aiosentinel.Sentinel(
        settings.sentinel_addresses,
        sentinel_kwargs=_sentinel_kwargs(),
        **url_auth(settings.redis_url),
        **options,
    )
    return sentinel.master_for(settings.redis_master_name, redis_class=aioredis.Redis)


def _beyond_wait(settings: Settings, socket_timeout: float) -> float:
    # A WAIT for replicas must end (and say so) before the socket gives up on its answer.
    return max(socket_timeout, settings.redis_replica_timeout_s + 5)


def _sentinel_kwargs() -> dict[str, Any]:
    # Sentinels get no password: a Sentinel usually has none, and sending one it does not
    # expect is an error (kombu does the same).
    return {"socket_connect_timeout": SENTINEL_TIMEOUT_S, "socket_timeout": SENTINEL_TIMEOUT_S}


def broker_url(settings: Settings) -> str:
    """Celery's broker URL: ``CIO_REDIS_URL``, or one ``sentinel://`` URL per Sentinel
    (separated by ``;``, kombu's form) carrying the URL's password and db."""
    if not settings.sentinel_addresses:
        return settings.redis_url
    auth = url_auth(settings.redis_url)
    user = quote(auth.get("username", ""), safe="")
    password = quote(auth.get("password", ""), safe="")
    cred = f"{user}:{password}@" if user or password else ""
    return ";".join(
        f"sentinel://{cred}{_host(host)}:{port}/{auth['db']}"
        for host, port in settings.sentinel_addresses
    )


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """kombu's Redis transport options: the key prefix, and the master name with Sentinel."""
    options: dict[str, Any] = {
        "global_keyprefix": f"{settings.redis_prefix}:celery:",
        "visibility_timeout": 3600,
    }
    if settings.sentinel_addresses:
        options["master_name"] = settings.redis_master_name
        options["sentinel_kwargs"] = _sentinel_kwargs()
    return options


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class TooFewReplicas(redis.exceptions.RedisError):
    """Raised when fewer replicas than ``CIO_REDIS_MIN_REPLICAS`` confirmed a write in
    time: the entries may be on the primary, but a failover could lose them, so the write
    is not acknowledged."""


@dataclass(frozen=True, slots=True)
class Durability:
    """How many replicas must hold a write before it counts as acknowledged (Redis WAIT)."""

    min_replicas: int = 0
    timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Durability:
        return cls(settings.redis_min_replicas, settings.redis_replica_timeout_s)

    def wait_command(self) -> tuple[str, int, int] | None:
        """``WAIT numreplicas timeout`` to send after the write, or None when not needed."""
        if self.min_replicas <= 0:
            return None
        return ("WAIT", self.min_replicas, max(1, round(self.timeout_s * 1000)))

    def check(self, confirmed: int) -> None:
        """TooFewReplicas unless ``confirmed`` (WAIT's answer) reaches the minimum."""
        if confirmed < self.min_replicas:
            raise TooFewReplicas(
                f"not acknowledged: only {confirmed} of {self.min_replicas} replica(s) "
                f"confirmed the write within {self.timeout_s:g} s (CIO_REDIS_MIN_REPLICAS); "
                "retry later (a retried event keeps its id, so it is delivered once)"
            )


def stream_add_commands(
    stream: str,
    entries: Sequence[Mapping[str, bytes | str]],
    durability: Durability,
    *,
    with_length: bool = False,
) -> list[tuple[Any, ...]]:
    """The commands that add ``entries`` all or nothing: ``MULTI``, one ``XADD`` each (and
    ``XLEN`` when asked), ``EXEC``, then ``WAIT`` on the same connection if replicas must
    confirm. A refused write (``OOM``, ``MISCONF``) aborts the whole ``EXEC``."""
    commands: list[tuple[Any, ...]] = [("MULTI",)]
    for entry in entries:
        flat: list[bytes | str] = ["XADD", stream, "*"]
        for name, value in entry.items():
            flat += [name, value]
        commands.append(tuple(flat))
    if with_length:
        commands.append(("XLEN", stream))
    commands.append(("EXEC",))
    wait = durability.wait_command()
    if wait is not None:
        commands.append(wait)
    return commands


def stream_add_results(replies: Sequence[Any], durability: Durability) -> list[Any]:
    """What ``EXEC`` returned for :func:`stream_add_commands` (entry ids, then the length),
    or the error that refused the write, or TooFewReplicas."""
    errors = [r for r in replies if isinstance(r, Exception)]
    if errors:  # the cause (OOM, MISCONF, READONLY…) comes before EXEC's EXECABORT
        cause = [e for e in errors if not isinstance(e, redis.exceptions.ExecAbortError)]
        raise (cause or errors)[0]
    waited = durability.wait_command() is not None
    executed = replies[-2] if waited else replies[-1]
    if executed is None:
        raise redis.exceptions.ResponseError("EXEC was discarded")
    inner = [r for r in executed if isinstance(r, Exception)]
    if inner:
        raise inner[0]
    if waited:
        durability.check(int(replies[-1]))
    return list(executed)


def add_to_stream(
    client: redis.Redis,
    stream: str,
    entries: Sequence[Mapping[str, bytes | str]],
    durability: Durability,
    *,
    with_length: bool = False,
) -> list[Any]:
    """Add ``entries`` in one round trip on one connection (see :func:`stream_add_commands`)."""
    # Raw replies: inside MULTI every command answers QUEUED, which no callback expects.
    pipe = redis.client.Pipeline(client.connection_pool, {}, False, None)
    for command in stream_add_commands(stream, entries, durability, with_length=with_length):
        pipe.execute_command(*command)
    return stream_add_results(pipe.execute(raise_on_error=False), durability)


# Adds every entry of ARGV (field count, then that many name/value pairs, per entry) to
# KEYS[1] and returns the stream's length. A script is atomic, and Redis refuses a write
# it would refuse anyway (OOM, MISCONF, READONLY) at the script's first write, before
# anything changed: all or nothing, like MULTI/EXEC, but one command instead of two plus
# one per entry, and one reply for redis-py to parse instead of one per entry.
_APPEND = """
local i, n = 1, #ARGV
while i <= n do
  local c = tonumber(ARGV[i])
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, i + 1, i + 2 * c))
  i = i + 1 + 2 * c
end
return redis.call('XLEN', KEYS[1])
"""


def append_command(stream: str, entries: Sequence[Mapping[str, bytes | str]]) -> list[Any]:
    """The one ``EVAL`` that adds ``entries`` all or nothing and answers the length."""
    argv: list[Any] = ["EVAL", _APPEND, 1, stream]
    for entry in entries:
        argv.append(len(entry))
        for name, value in entry.items():
            argv += [name, value]
    return argv


async def add_to_stream_async(
    client: aioredis.Redis,
    stream: str,
    entries: Sequence[Mapping[str, bytes | str]],
    durability: Durability,
) -> int:
    """Add ``entries`` all or nothing in one round trip (the collector's hot path) and
    return the stream's length; ``WAIT`` follows on the same connection when replicas
    must confirm (TooFewReplicas when too few do)."""
    pipe = redis.asyncio.client.Pipeline(client.connection_pool, {}, False, None)
    pipe.execute_command(*append_command(stream, entries))
    wait = durability.wait_command()
    if wait is not None:
        pipe.execute_command(*wait)
    replies = await pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    if wait is not None:
        durability.check(int(replies[-1]))
    return int(replies[0])


def refusal_cause(exc: BaseException) -> str | None:
    """The cause a Redis error names (``OOM``, ``MISCONF``…, see REFUSALS), else None."""
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return "OOM"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return "READONLY"
    text = str(exc).split("\n", 1)[0]
    for cause in REFUSALS:
        if text.startswith(cause) or f" {cause} " in f" {text} ":
            return cause
    return None


def write_refusal(client: redis.Redis, key: str) -> str | None:
    """Try one tiny write (``key`` expires in a minute): None when Redis takes writes, else
    the cause it named for refusing (``OOM``, ``MISCONF``…; the error's class otherwise)."""
    try:
        client.set(key, "1", px=60_000)
    except redis.exceptions.ResponseError as exc:
        return refusal_cause(exc) or type(exc).__name__
    return None


def describe_refusal(exc: BaseException) -> str:
    """Why Redis did not take a write, in words safe to show a sender or an operator (no
    event content, no secrets): the cause Redis named (OOM, MISCONF…) with what it means."""
    if isinstance(exc, TooFewReplicas):
        return str(exc)
    cause = refusal_cause(exc)
    if cause is not None:
        return f"Redis refused the write ({cause}: {REFUSALS[cause]}); none of it was stored"
    if isinstance(exc, redis.exceptions.ConnectionError | OSError | TimeoutError):
        return "Redis is unreachable"
    return f"Redis refused the write ({type(exc).__name__})"


# The write refusals Redis names in its error's first word, and what each means here.
REFUSALS = {
    "OOM": "out of memory under maxmemory with noeviction",
    "MISCONF": "it cannot persist (a failed RDB save or AOF write: disk full or unwritable?)",
    "READONLY": "a replica, not the primary",
    "NOREPLICAS": "fewer replicas than its min-replicas-to-write",
    "LOADING": "it is loading its data after a restart",
    "MASTERDOWN": "a replica cut off from its primary",
}


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
