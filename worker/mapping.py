"""Map a normalised, identified event to the Customer.io operation that carries it.

Pure functions: no Redis, HTTP or settings. Customer.io's limits are checked here so
that what it would refuse is dead-lettered with a reason instead of failing a batch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import orjson

from worker import cio_limits as lim
from worker.errors import InvalidEvent, RejectedEvent
from worker.events import Event
from worker.identity import Identity
from worker.normalize.timestamps import parse_timestamp

Endpoint = Literal["batch", "anonymous"]
PageNameOverflow = Literal["dead_letter", "strip_query", "truncate"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ACTIONS = {"track": "event", "page": "page", "screen": "screen"}


@dataclass(slots=True)
class Operation:
    """One Customer.io operation, already JSON-encoded for the request body."""

    endpoint: Endpoint
    encoded: bytes
    event_id: str | None


def encode(obj: Any) -> bytes:
    """Compact UTF-8 JSON, the form sizes are measured in.

    orjson writes the same compact UTF-8 form (exponents aside: ``1e-7`` for ``1e-07``)
    five times faster; what it cannot write (integers past 64 bits, non-string keys)
    falls back to ``json``.
    """
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def identifiers_for(value: str, identify_by: str) -> dict[str, str]:
    """The v2 ``identifiers`` object: email when identifying by email, else id (or cio_id)."""
    if identify_by == "identify_by_email":
        if not _EMAIL.match(value):
            raise RejectedEvent("invalid_identifier", f"{identify_by} is not an email address")
        return {"email": value}
    return id_identifiers(value)


def id_identifiers(value: str) -> dict[str, str]:
    """``cio_id`` for a ``cio_…`` value, else ``id`` within Customer.io's length limit."""
    if value.startswith("cio_"):
        return {"cio_id": value[4:]}
    if len(value.encode("utf-8")) > lim.PERSON_ID_MAX_BYTES:
        raise RejectedEvent(
            "limit_exceeded",
            f"person id is {len(value.encode())} bytes; Customer.io allows "
            f"{lim.PERSON_ID_MAX_BYTES}",
        )
    return {"id": value}


def page_name(url: str | None, overflow: PageNameOverflow) -> str:
    """A page event's name is its URL; over 100 bytes it is handled as ``overflow`` says."""
    if not url or not url.strip():
        raise RejectedEvent("invalid_event", "page view has no URL to name it by")
    if _fits(url):
        return url
    if overflow == "strip_query":
        parts = urlsplit(url)
        stripped = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        if _fits(stripped):
            return stripped
    elif overflow == "truncate":
        return url.encode("utf-8")[: lim.EVENT_NAME_MAX_BYTES].decode("utf-8", "ignore")
    raise RejectedEvent(
        "limit_exceeded",
        f"page URL is {len(url.encode())} bytes; Customer.io allows "
        f"{lim.EVENT_NAME_MAX_BYTES} for a page name (see CIO_PAGE_NAME_OVERFLOW)",
    )


def build_operation(
    event: Event,
    identity: Identity,
    event_id: str,
    *,
    identify_by: str,
    page_overflow: PageNameOverflow = "dead_letter",
) -> Operation:
    """The operation for one event; raises RejectedEvent when Customer.io would refuse it."""
    if event.kind in ("group", "alias"):
        raise ValueError(f"{event.kind} calls are mapped by worker.spec")
    if identity.anonymous:
        return _anonymous_event(event, identity.value, event_id, page_overflow)
    identifiers = identifiers_for(identity.value, identify_by)
    if event.kind == "identify":
        return _identify(event, identifiers)
    name = _event_name(event, page_overflow)
    data = _event_data(event)
    op = {
        "type": "person",
        "identifiers": identifiers,
        "action": _ACTIONS[event.kind],
        "name": name,
        "id": event_id,
        "timestamp": event.timestamp,
        "attributes": data,
    }
    return _checked(Operation("batch", encode(op), event_id), lim.BATCH_OPERATION_MAX_BYTES)


def person_attributes(event: Event) -> dict[str, Any]:
    """Identify attributes: the user traits, plus the anonymous id so past visits merge."""
    attributes = dict(event.traits)
    for key in ("created_at", "createdAt"):
        if key in attributes and not isinstance(attributes[key], int):
            # Customer.io reads created_at as Unix seconds; ISO strings break segments.
            try:
                attributes["created_at"] = parse_timestamp(
                    attributes.pop(key), received_at=event.timestamp, field=key
                )
            except InvalidEvent as exc:
                raise RejectedEvent("invalid_event", exc.detail) from None
    if event.anonymous_id and "anonymous_id" not in attributes:
        attributes["anonymous_id"] = event.anonymous_id
    return attributes


def _identify(event: Event, identifiers: dict[str, str]) -> Operation:
    attributes = person_attributes(event)
    email = attributes.get("email")
    if "email" in identifiers and not email:
        attributes["email"] = identifiers["email"]
    _check_attributes(attributes)
    op = {
        "type": "person",
        "identifiers": identifiers,
        "action": "identify",
        "attributes": attributes,
    }
    return _checked(Operation("batch", encode(op), None), lim.BATCH_OPERATION_MAX_BYTES)


def _anonymous_event(
    event: Event, anonymous_id: str, event_id: str, overflow: PageNameOverflow
) -> Operation:
    data = _event_data(event)
    if event.kind == "identify":
        data = {**person_attributes(event), **data}
        data.pop("anonymous_id", None)
    body: dict[str, Any] = {
        "name": _event_name(event, overflow),
        "anonymous_id": anonymous_id,
        "id": event_id,
        "timestamp": event.timestamp,
        "data": data,
    }
    if event.kind in ("page", "screen"):
        body["type"] = event.kind
    return _checked(Operation("anonymous", encode(body), event_id), lim.ENTITY_REQUEST_MAX_BYTES)


def _event_name(event: Event, overflow: PageNameOverflow) -> str:
    if event.kind == "page":
        return page_name(event.url, overflow)
    name = event.name.strip()
    if not name:
        raise RejectedEvent("invalid_event", "event name is blank")
    if not _fits(name):
        raise RejectedEvent(
            "limit_exceeded",
            f"event name is {len(name.encode())} bytes; Customer.io allows "
            f"{lim.EVENT_NAME_MAX_BYTES}",
        )
    return name


def _event_data(event: Event) -> dict[str, Any]:
    size = len(encode(event.properties))
    if size > lim.EVENT_DATA_MAX_BYTES:
        raise RejectedEvent(
            "limit_exceeded",
            f"event data is {size} bytes; Customer.io allows {lim.EVENT_DATA_MAX_BYTES}",
        )
    return event.properties


def _check_attributes(attributes: dict[str, Any]) -> None:
    if len(attributes) > lim.ATTRIBUTES_PER_IDENTIFY_MAX:
        raise RejectedEvent(
            "limit_exceeded",
            f"{len(attributes)} attributes; Customer.io allows "
            f"{lim.ATTRIBUTES_PER_IDENTIFY_MAX} in one identify",
        )
    for name, value in attributes.items():
        if len(name.encode("utf-8")) > lim.ATTRIBUTE_NAME_MAX_BYTES:
            raise RejectedEvent(
                "limit_exceeded",
                f"attribute name {name[:40]!r}... is over {lim.ATTRIBUTE_NAME_MAX_BYTES} bytes",
            )
        size = _value_bytes(value)
        if size > lim.ATTRIBUTE_VALUE_MAX_BYTES:
            raise RejectedEvent(
                "limit_exceeded",
                f"attribute {name!r} is {size} bytes; Customer.io allows "
                f"{lim.ATTRIBUTE_VALUE_MAX_BYTES}",
            )


def _value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(encode(value))


def _fits(name: str) -> bool:
    return len(name.encode("utf-8")) <= lim.EVENT_NAME_MAX_BYTES


def _checked(op: Operation, max_bytes: int) -> Operation:
    if len(op.encoded) > max_bytes:
        raise RejectedEvent(
            "limit_exceeded",
            f"operation is {len(op.encoded)} bytes; Customer.io allows {max_bytes}",
        )
    return op
