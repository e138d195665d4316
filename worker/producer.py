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
) -> str:
    """Validate one event and add it to the inbox; returns the stream entry id."""
    entry_id = client.xadd(Keys(prefix).inbox, {"event": encode_event(event, max_bytes)})
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def enqueue_many(
    client: redis.Redis,
    events: Iterable[Any],
    *,
    prefix: str = "cio",
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> tuple[list[str], list[Rejection]]:
    """Validate and add many events, pipelined; returns the entry ids and the rejections.

    Valid events are added even when others are refused; nothing is dropped silently.
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
            ids.extend(_flush(client, inbox, chunk))
            chunk = []
    if chunk:
        ids.extend(_flush(client, inbox, chunk))
    return ids, rejected


def _flush(client: redis.Redis, inbox: str, chunk: Sequence[bytes]) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for data in chunk:
        pipe.xadd(inbox, {"event": data})
    return [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]
