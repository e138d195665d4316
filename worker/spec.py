"""The rest of the Segment spec as Customer.io models it: objects, relationships, merges,
devices, privacy requests.

Pure functions, like ``mapping``: which Customer.io operation a group call or a named
spec event becomes, and that operation, checked against Customer.io's limits.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from worker import cio_limits as lim
from worker.errors import InvalidEvent, RejectedEvent
from worker.events import Event
from worker.identity import memory_keys, resolve
from worker.mapping import (
    Operation,
    _check_attributes,
    _checked,
    encode,
    id_identifiers,
    identifiers_for,
)
from worker.normalize.timestamps import parse_timestamp

OBJECT_DELETED = "Object Deleted"
RELATIONSHIP_DELETED = "Relationship Deleted"
DEFAULT_OBJECT_TYPE = "1"
# Group traits that say how to file the object rather than describe it.
OBJECT_TYPE_KEYS = ("object_type_id", "objectTypeId")
RELATIONSHIP_KEY = "relationshipAttributes"
NOT_ATTRIBUTES = frozenset((*OBJECT_TYPE_KEYS, RELATIONSHIP_KEY))

# Track event names with a Customer.io operation of their own (Segment's spec names).
NAMED_ACTIONS = {
    OBJECT_DELETED: "object_delete",
    RELATIONSHIP_DELETED: "relationship_delete",
    "User Deleted": "delete",
    "User Suppressed": "suppress",
    "User Unsuppressed": "unsuppress",
}
PRIVACY_ACTIONS = ("delete", "suppress", "unsuppress")
# Both remove the person from Customer.io, so the relay forgets who their ids were.
FORGETTING_ACTIONS = ("delete", "suppress")
# Segment's mobile spec: with context.device.token these add or remove a push device.
DEVICE_ADDED = ("Application Installed", "Application Opened", "Device Created or Updated")
DEVICE_REMOVED = ("Application Uninstalled", "Device Deleted")
DEVICE_ACTIONS = ("add_device", "delete_device")
_PLATFORMS = {"ios": "ios", "ipados": "ios", "iphone os": "ios", "android": "android"}

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OBJECT_TYPE = re.compile(r"^[1-9][0-9]*$")
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)

MemoryKey = tuple[str, str]


@dataclass(slots=True)
class Person:
    """A person named in an operation: the v2 identifiers and the text shown in activity."""

    identifiers: dict[str, str]
    shown: str
    # The identifier as identity memory holds it; None when only a raw user id named them.
    remembered: str | None = None


def spec_action(event: Event) -> str | None:
    """The special operation an event becomes, or None for an ordinary person operation."""
    if event.kind == "group":
        return "object_identify"
    if event.kind == "alias":
        return "merge"
    if event.kind != "track":
        return None
    if event.name in DEVICE_ADDED or event.name in DEVICE_REMOVED:
        if device_token(event) is None:
            return None  # without a token it stays a plain event
        return "add_device" if event.name in DEVICE_ADDED else "delete_device"
    return NAMED_ACTIONS.get(event.name)


def device_token(event: Event) -> str | None:
    """``context.device.token``: the push token a device operation needs."""
    token = event.device.get("token")
    if isinstance(token, str) and token.strip():
        return token.strip()
    return None


def device_platform(event: Event) -> str:
    """``context.device.type`` as Customer.io's ``ios`` / ``android``."""
    kind = event.device.get("type")
    platform = _PLATFORMS.get(kind.strip().lower()) if isinstance(kind, str) else None
    if platform is None:
        raise RejectedEvent(
            "invalid_event",
            f"context.device.type {kind!r:.40} is not a push platform Customer.io knows "
            "(iOS or Android)",
        )
    return platform


def device_attributes(event: Event) -> dict[str, str]:
    """Device attributes as strings: ``context.app`` (``version`` as Customer.io's
    ``app_version``, the rest as ``app_<key>``), ``device_model`` and ``device_os``."""
    out: dict[str, str] = {}
    for key, value in event.app.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            out[f"app_{key}"] = str(value)
    model = event.device.get("model")
    if isinstance(model, str) and model:
        out["device_model"] = model
    os_info = event.device.get("os")
    if isinstance(os_info, dict):
        parts = [str(os_info[k]) for k in ("name", "version") if isinstance(os_info.get(k), str)]
        if parts:
            out["device_os"] = " ".join(parts)
    return out


def add_device(event: Event, person: Person) -> Operation:
    """A device event with a token: the person's device, last used at the event's time."""
    device: dict[str, Any] = {
        "token": device_token(event),
        "platform": device_platform(event),
        "last_used": event.timestamp,
    }
    attributes = device_attributes(event)
    if attributes:
        _check_attributes(attributes)
        device["attributes"] = attributes
    op = {
        "type": "person",
        "identifiers": person.identifiers,
        "action": "add_device",
        "device": device,
    }
    return _checked(Operation("batch", encode(op), None), lim.BATCH_OPERATION_MAX_BYTES)


def delete_device(event: Event, person: Person) -> Operation:
    """``Application Uninstalled`` / ``Device Deleted``: the token leaves the person."""
    op = {
        "type": "person",
        "identifiers": person.identifiers,
        "action": "delete_device",
        "device": {"token": device_token(event)},
    }
    return Operation("batch", encode(op), None)


def by_form(value: str) -> dict[str, str]:
    """Identifiers for a raw user id: email-shaped → email, ``cio_…`` → cio_id, else id."""
    if _EMAIL.match(value) and not value.startswith("cio_"):
        return {"email": value}
    return id_identifiers(value)


def person_of(event: Event, identify_by: str, known: Mapping[MemoryKey, str]) -> Person | None:
    """Who the event is about: its identifier (found or remembered), else its user id."""
    identity = resolve(event, identify_by, known)
    if identity is not None and not identity.anonymous:
        return Person(identifiers_for(identity.value, identify_by), identity.value, identity.value)
    if event.user_id:
        return Person(by_form(event.user_id), event.user_id)
    return None


def previous_keys(event: Event) -> list[MemoryKey]:
    """The memories an alias's ``previousId`` may be known by: a user id or anonymous id."""
    previous = previous_id(event)
    return [("user", previous), ("anon", previous)] if previous else []


def previous_id(event: Event) -> str | None:
    """An alias's ``previousId``."""
    value = event.properties.get("previous_id") if event.kind == "alias" else None
    return value if isinstance(value, str) and value else None


def merged_away(event: Event, identify_by: str, known: Mapping[MemoryKey, str]) -> Person:
    """The person an alias merges away: the identifier remembered for ``previousId``,
    else ``previousId`` itself."""
    previous = previous_id(event)
    if previous is None:
        raise RejectedEvent("invalid_event", "an alias call needs a previousId")
    for key in previous_keys(event):
        remembered = (known.get(key) or "").strip()
        if remembered:
            return Person(identifiers_for(remembered, identify_by), remembered, remembered)
    return Person(by_form(previous), previous)


def merge(primary: Person, secondary: Person) -> Operation:
    """``alias``: the person ``previousId`` named is merged into the one ``userId`` names."""
    op = {
        "type": "person",
        "action": "merge",
        "primary": primary.identifiers,
        "secondary": secondary.identifiers,
    }
    return Operation("batch", encode(op), None)


def merge_memories(
    event: Event, primary: Person, known: Mapping[MemoryKey, str]
) -> dict[MemoryKey, str]:
    """What identity memory learns from a merge: ``previousId`` (as a user id, and as the
    anonymous id it was remembered as) now names the primary person."""
    if primary.remembered is None:
        return {}
    keys = previous_keys(event)
    learned = {keys[0]: primary.remembered} if keys else {}
    if len(keys) > 1 and known.get(keys[1]):
        learned[keys[1]] = primary.remembered
    return learned


def privacy_request(action: str, person: Person) -> Operation:
    """``User Deleted`` / ``User Suppressed`` / ``User Unsuppressed`` for the person."""
    op = {"type": "person", "identifiers": person.identifiers, "action": action}
    return Operation("batch", encode(op), None)


def forgotten(event: Event, person: Person, known: Mapping[MemoryKey, str]) -> dict[MemoryKey, str]:
    """Identity memories a deletion erases ("" = forget): the event's own user and
    anonymous ids, and every id this batch knew as that person."""
    keys: dict[MemoryKey, str] = {key: "" for key in memory_keys(event)}
    if person.remembered:
        keys.update({key: "" for key, value in known.items() if value == person.remembered})
    return keys


def object_type(value: object, fallback: str) -> str:
    """A string integer from "1": the event's own type, else the workflow's or "1"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return fallback
    text = str(value).strip() if isinstance(value, str | int) else ""
    if isinstance(value, bool) or not _OBJECT_TYPE.match(text):
        raise RejectedEvent(
            "invalid_event", f"object_type_id must be a whole number from 1, not {value!r:.40}"
        )
    return text


def _object_identifiers(event: Event, type_id: str) -> dict[str, str]:
    if not event.group_id:
        raise RejectedEvent("invalid_event", f"{event.name} has no groupId to name the object by")
    if len(event.group_id.encode("utf-8")) > lim.PERSON_ID_MAX_BYTES:
        raise RejectedEvent(
            "limit_exceeded",
            f"object id is {len(event.group_id.encode())} bytes; Customer.io allows "
            f"{lim.PERSON_ID_MAX_BYTES}",
        )
    return {"object_type_id": type_id, "object_id": event.group_id}


def iso_seconds(text: str) -> int:
    """Unix seconds of an ISO-8601 date or date-time (UTC when it names no offset)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def relationship_attributes(value: object) -> dict[str, Any]:
    """``traits.relationshipAttributes`` with ISO-8601 dates as Unix seconds."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RejectedEvent("invalid_event", "relationshipAttributes must be an object")
    out: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(item, str) and _ISO_DATE.match(item.strip()):
            with contextlib.suppress(ValueError):  # not a real date: keep the text
                item = iso_seconds(item)
        out[name] = item
    return out


def object_identify(
    event: Event, person: Person | None, anonymous_id: str | None, default_type: str
) -> Operation:
    """A group call: the object with its attributes, related to the person (or anonymous id)."""
    traits = event.properties.get("group_traits")
    traits = traits if isinstance(traits, dict) else {}
    type_id = object_type(traits.get("object_type_id", traits.get("objectTypeId")), default_type)
    attributes = {k: v for k, v in traits.items() if k not in NOT_ATTRIBUTES}
    for key in ("created_at", "createdAt"):
        if isinstance(attributes.get(key), str):
            try:
                attributes["created_at"] = parse_timestamp(
                    attributes.pop(key), received_at=event.timestamp, field=key
                )
            except InvalidEvent as exc:
                raise RejectedEvent("invalid_event", exc.detail) from None
    _check_attributes(attributes)
    op: dict[str, Any] = {
        "type": "object",
        "identifiers": _object_identifiers(event, type_id),
        "action": "identify",
        "attributes": attributes,
    }
    related = relationship_attributes(traits.get(RELATIONSHIP_KEY))
    if person is not None:
        op["cio_relationships"] = [_relationship(person.identifiers, related)]
    elif anonymous_id:
        op["action"] = "identify_anonymous"
        op["cio_relationships"] = [_relationship({"anonymous_id": anonymous_id}, related)]
    return _checked(Operation("batch", encode(op), None), lim.BATCH_OPERATION_MAX_BYTES)


def _relationship(identifiers: dict[str, str], attributes: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"identifiers": identifiers}
    if attributes:
        item["relationship_attributes"] = attributes
    return item


def _event_object_type(event: Event, default_type: str) -> str:
    props = event.properties
    return object_type(props.get("object_type_id", props.get("objectTypeId")), default_type)


def object_delete(event: Event, default_type: str) -> Operation:
    """``Object Deleted``: delete the object named by groupId (its relationships go too)."""
    op = {
        "type": "object",
        "identifiers": _object_identifiers(event, _event_object_type(event, default_type)),
        "action": "delete",
    }
    return Operation("batch", encode(op), None)


def relationship_delete(event: Event, person: Person, default_type: str) -> Operation:
    """``Relationship Deleted``: the person no longer belongs to the object."""
    op = {
        "type": "object",
        "identifiers": _object_identifiers(event, _event_object_type(event, default_type)),
        "action": "delete_relationships",
        "cio_relationships": [{"identifiers": person.identifiers}],
    }
    return Operation("batch", encode(op), None)
