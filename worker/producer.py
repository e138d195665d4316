"""The producer side: validate events and XADD them to the inbox.

Producers in other languages need none of this: one ``XADD <prefix>:inbox * event <json>``
is the whole contract. This module adds the checks that catch bad events at the source.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from worker.errors import InvalidEvent
from worker.keys import Keys
from worker.redisconn import Durability, add_to_stream, as_text
from worker.settings import get_settings

DEFAULT_MAX_EVENT_BYTES = 32_768
PIPELINE_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event ``enqueue_many`` refused: its position in the input and why."""

    index: int
    reason: str
    detail: str


def encode_event(event: Any, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> bytes:
    """The event as compact UTF-8 JSON, or InvalidEvent if it is not a JSON object (or the
    CustomerLabs queue-tuple list) or is too large."""
    if isinstance(event, bytes | str):
        try:
            event = json.loads(event)
        except (ValueError, RecursionError) as exc:
            raise InvalidEvent("invalid_json", f"not valid JSON ({exc})") from None
    if not isinstance(event, Mapping | list):
        raise InvalidEvent(
            "not_an_object", f"an event must be a JSON object, not {type(event).__name__}"
        )
    if isinstance(event, list) and not (event and isinstance(event[0], str)):
        raise InvalidEvent(
            "not_an_object", "a list is accepted only in the snippet form [method, ...]"
        )
    try:
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEvent("invalid_field", f"not JSON-serialisable: {exc}") from None
    encoded = data.encode("utf-8")
    if len(encoded) > max_bytes:
        raise InvalidEvent("too_large", f"event is {len(encoded)} bytes; the limit is {max_bytes}")
    return encoded


def enqueue(
    client: redis.Redis,
    event: Any,
    *,
    prefix: str = "cio",
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    durability: Durability | None = None,
) -> str:
    """Validate one event and add it to the inbox; returns the stream entry id once it is
    durably acknowledged (``durability``, else ``CIO_REDIS_MIN_REPLICAS``).

    Raises InvalidEvent for a bad event, TooFewReplicas when too few replicas confirmed it,
    and redis-py's errors when Redis refused it (``describe_refusal`` words them).
    """
    data = encode_event(event, max_bytes)
    return add_events(client, Keys(prefix).inbox, [data], durability)[0]


def enqueue_many(
    client: redis.Redis,
    events: Iterable[Any],
    *,
    prefix: str = "cio",
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    durability: Durability | None = None,
) -> tuple[list[str], list[Rejection]]:
    """Validate and add many events, a transaction per 1,000; returns the entry ids and
    the rejections once every id is durably acknowledged (as :func:`enqueue`).

    Valid events are added even when others are refused; nothing is dropped silently.
    A Redis error stops it: the chunks before it are stored, the failed one is not.
    """
    inbox = Keys(prefix).inbox
    ids: list[str] = []
    rejected: list[Rejection] = []
    chunk: list[bytes] = []
    for index, event in enumerate(events):
        try:
            chunk.append(encode_event(event, max_bytes))
        except InvalidEvent as exc:
            rejected.append(Rejection(index, exc.reason, exc.detail))
            continue
        if len(chunk) >= PIPELINE_CHUNK:
            ids.extend(add_events(client, inbox, chunk, durability))
            chunk = []
    if chunk:
        ids.extend(add_events(client, inbox, chunk, durability))
    return ids, rejected


def add_events(
    client: redis.Redis, inbox: str, chunk: Sequence[bytes], durability: Durability | None
) -> list[str]:
    """XADD encoded events all or nothing in one round trip, then WAIT for the replicas
    ``durability`` asks for (``CIO_REDIS_MIN_REPLICAS`` when None); their entry ids."""
    if durability is None:
        durability = Durability.from_settings(get_settings())
    entries = [{"event": data} for data in chunk]
    return [as_text(i) for i in add_to_stream(client, inbox, entries, durability)]
