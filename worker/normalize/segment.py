"""Segment-spec events (identify, track, page, screen, group) as an ``Event``."""

from __future__ import annotations

from typing import Any

from worker.errors import InvalidEvent
from worker.events import Event, Kind
from worker.normalize.consent import from_context as consent_from_context
from worker.normalize.fields import (
    app_context,
    dedupe_key,
    device_context,
    expect_object,
    first_text,
    message_id,
    optional_text,
)
from worker.normalize.timestamps import parse_timestamp
from worker.normalize.values import coerce_id, describe, plain_copy

TYPES: tuple[Kind, ...] = ("identify", "track", "page", "screen", "group", "alias")
FIXED_NAMES = {
    "screen": "Screen viewed",
    "identify": "Create user",
    "group": "Create group",
    "alias": "Merge users",
}
TIMESTAMP_FIELDS = ("timestamp", "originalTimestamp", "sentAt")


def from_segment(raw: dict[str, Any], *, received_at: int, page_view_event: str) -> Event:
    """Normalise one Segment-spec call; ``integrations``, ``context.library`` etc. are ignored."""
    kind = _kind(raw.get("type"))
    properties = plain_copy(expect_object(raw.get("properties"), "properties"), field="properties")
    context = expect_object(raw.get("context"), "context")
    traits = plain_copy(expect_object(context.get("traits"), "context.traits"), field="traits")
    top_traits = plain_copy(expect_object(raw.get("traits"), "traits"), field="traits")
    if kind == "identify":
        traits.update(top_traits)
    elif kind == "group":
        # A group call's traits describe the account, not the person: keep them apart so
        # a company email can never be taken for the person's identifier.
        if top_traits:
            properties["group_traits"] = top_traits
    elif kind == "alias":
        previous_id = coerce_id(raw.get("previousId"), "previousId")
        if previous_id is not None:
            properties["previous_id"] = previous_id
    if kind in ("page", "screen"):
        page_name = raw.get("name")
        if isinstance(page_name, str) and page_name.strip() and "name" not in properties:
            properties["name"] = page_name
    group_id = _group_id(kind, raw, context)
    if kind == "group" and group_id is not None:
        properties["group_id"] = group_id
    page = expect_object(context.get("page"), "context.page")
    msg_id = message_id(raw.get("messageId"), "messageId")
    return Event(
        kind=kind,
        name=_name(kind, raw, page_view_event),
        timestamp=_timestamp(raw, received_at),
        dedupe_key=dedupe_key(msg_id, raw),
        source="segment",
        properties=properties,
        traits=traits,
        url=optional_text(page.get("url"), "context.page.url") or first_text(properties.get("url")),
        user_id=coerce_id(raw.get("userId"), "userId"),
        anonymous_id=coerce_id(raw.get("anonymousId"), "anonymousId"),
        message_id=msg_id,
        group_id=group_id,
        device=device_context(context),
        app=app_context(context),
        consent=consent_from_context(context),
    )


def _group_id(kind: Kind, raw: dict[str, Any], context: dict[str, Any]) -> str | None:
    """The object an event names: ``groupId``, else ``context.groupId``.

    Only a group call must spell it right; other calls merely may carry it, so a value of
    another type there is ignored rather than dead-lettering the event.
    """
    if kind == "group":
        return coerce_id(raw.get("groupId"), "groupId") or coerce_id(
            context.get("groupId"), "context.groupId"
        )
    for value in (raw.get("groupId"), context.get("groupId")):
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _kind(value: object) -> Kind:
    """Read Segment's ``type``, case-insensitively."""
    if value is None:
        raise InvalidEvent("missing_field", "type is required.")
    if not isinstance(value, str):
        raise InvalidEvent("invalid_field", f"type must be a string, not {describe(value)}.")
    lowered = value.strip().lower()
    for kind in TYPES:
        if kind == lowered:
            return kind
    raise InvalidEvent("invalid_field", f"type {value[:40]!r} is not one of {', '.join(TYPES)}.")


def _name(kind: Kind, raw: dict[str, Any], page_view_event: str) -> str:
    """Return the workflow name: ``event`` for track, a fixed name for the other calls."""
    if kind == "page":
        return page_view_event
    if kind != "track":
        return FIXED_NAMES[kind]
    event = raw.get("event")
    if event is not None and not isinstance(event, str):
        raise InvalidEvent("invalid_field", f"event must be a string, not {describe(event)}.")
    if event is None or not event.strip():
        raise InvalidEvent("missing_field", "event (the event name) is required for a track call.")
    return event.strip()


def _timestamp(raw: dict[str, Any], received_at: int) -> int:
    """Read ``timestamp``, else ``originalTimestamp``, else ``sentAt``, else the arrival time."""
    for name in TIMESTAMP_FIELDS:
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        return parse_timestamp(value, received_at=received_at, field=name)
    return received_at
