"""CustomerLabs-shaped events (the envelope and the snippet's queue tuple) as an ``Event``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.consent import Consent
from worker.errors import InvalidEvent
from worker.events import Event, Kind
from worker.normalize import consent
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
from worker.normalize.values import coerce_id, describe, is_flag_set, is_wrapper, unwrap

METHODS = ("pageview", "trackClick", "trackSubmit", "track", "identify", "group")
_BY_LOWER = {method.lower(): method for method in METHODS}
DEFAULT_NAMES = {"identify": "Create user", "group": "Create group"}
CUSTOM = "properties.customProperties"
PRODUCTS = "properties.productProperties"


@dataclass
class _Custom:
    """``customProperties`` split into the event's data and its reserved parts."""

    data: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    external_ids: dict[str, Any] = field(default_factory=dict)
    markers: dict[str, Any] = field(default_factory=dict)
    group: dict[str, Any] = field(default_factory=dict)
    consent: object = None


def from_envelope(
    raw: dict[str, Any],
    *,
    received_at: int,
    page_view_event: str,
    hash_source: object = None,
) -> Event:
    """Normalise a CustomerLabs envelope; ``hash_source`` is what the dedupe hash covers."""
    method = _method(raw.get("method"), "method")
    name = _name(method, raw.get("event_name"), page_view_event)
    properties = expect_object(raw.get("properties"), "properties")
    custom = _split_custom(_custom_properties(properties))
    kind = _kind(method, name, page_view_event)
    data = custom.data
    products = _products(properties.get("productProperties"))
    if products is not None:
        data["products"] = products
    if kind == "group":
        data.update(custom.group)
    context = expect_object(raw.get("context"), "context")
    group_id = _group_id(custom.group.get("group_identify_markers"), context)
    if kind == "group" and group_id is not None:
        data["group_id"] = group_id
    msg_id = message_id(raw.get("message_id"), "message_id")
    return Event(
        kind=kind,
        name=name,
        timestamp=parse_timestamp(raw.get("timestamp"), received_at=received_at),
        dedupe_key=dedupe_key(msg_id, raw if hash_source is None else hash_source),
        source="customerlabs",
        properties=data,
        traits=custom.traits,
        external_ids=custom.external_ids,
        identify_markers=custom.markers,
        url=optional_text(context.get("page_url"), "context.page_url")
        or first_text(data.get("page_url"), data.get("url")),
        anonymous_id=coerce_id(raw.get("customerlabs_user_id"), "customerlabs_user_id")
        or coerce_id(
            custom.external_ids.get("customerlabs_user_id"),
            f"{CUSTOM}.external_ids.customerlabs_user_id",
        ),
        message_id=msg_id,
        group_id=group_id,
        device=device_context(context),
        app=app_context(context),
        consent=_consent(name, custom, context),
    )


def _consent(name: str, custom: _Custom, context: dict[str, Any]) -> Consent | None:
    """``customProperties.consent``; a ``Consent updated`` event's own consent keys; else a
    Segment-style consent object in the envelope's context."""
    found = consent.from_customerlabs(custom.consent)
    if found is None and name == consent.CONSENT_UPDATED:
        found = consent.from_consent_keys(custom.data)
    return found or consent.from_context(context)


def _group_id(markers: object, context: dict[str, Any]) -> str | None:
    """The object a CustomerLabs event names: its ``"igb": true`` value, else
    ``context.groupId``; anything that is not text or an integer is not an id."""
    if isinstance(markers, dict):
        for value in markers.values():
            found = _id_text(value)
            if found is not None:
                return found
    return _id_text(context.get("groupId"))


def _id_text(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def from_queue(raw: list[Any], *, received_at: int, page_view_event: str) -> Event:
    """Normalise the snippet's queue form ``[method, name?, properties?]``."""
    if not raw:
        raise InvalidEvent(
            "missing_field", "The queue entry is empty: its first item, the method, is required."
        )
    rest = list(raw[1:])
    envelope: dict[str, Any] = {"method": _method(raw[0], "queue entry item 0 (the method)")}
    if rest and (rest[0] is None or isinstance(rest[0], str)):
        envelope["event_name"] = rest.pop(0)
    if rest and (rest[0] is None or isinstance(rest[0], dict)):
        envelope["properties"] = rest.pop(0)
    if rest:
        raise InvalidEvent(
            "invalid_field",
            f"The queue entry must be [method, event name, properties]; "
            f"found {describe(rest[0])} where none was expected.",
        )
    return from_envelope(
        envelope, received_at=received_at, page_view_event=page_view_event, hash_source=raw
    )


def _method(value: object, label: str) -> str:
    """Return the canonical spelling of a CustomerLabs method name."""
    if value is None:
        raise InvalidEvent("missing_field", f"{label} is required.")
    if not isinstance(value, str):
        raise InvalidEvent("invalid_field", f"{label} must be a string, not {describe(value)}.")
    method = _BY_LOWER.get(value.strip().lower())
    if method is None:
        raise InvalidEvent(
            "invalid_field", f"{label} {value[:40]!r} is not one of {', '.join(METHODS)}."
        )
    return method


def _name(method: str, value: object, page_view_event: str) -> str:
    """Return the event name, defaulting it the way CustomerLabs does."""
    name = optional_text(value, "event_name")
    if name is not None:
        return name
    if method == "pageview":
        return page_view_event
    if method in DEFAULT_NAMES:
        return DEFAULT_NAMES[method]
    raise InvalidEvent("missing_field", f"event_name is required for a {method} call.")


def _kind(method: str, name: str, page_view_event: str) -> Kind:
    """Classify the call: identify, group, the automatic page view, or an event."""
    if method == "identify":
        return "identify"
    if method == "group":
        return "group"
    if method == "pageview" and name == page_view_event:
        return "page"
    return "track"


def _custom_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """Return ``customProperties`` still wrapped, with stray top-level properties under it."""
    custom = properties.get("customProperties")
    if is_wrapper(custom):
        custom = custom["v"]
    custom = expect_object(custom, CUSTOM)
    # Hand-written snippets sometimes put properties beside customProperties; keep them,
    # but what customProperties says wins.
    extras = {
        key: value
        for key, value in properties.items()
        if key not in ("customProperties", "productProperties")
    }
    return {**extras, **custom}


def _split_custom(custom: dict[str, Any]) -> _Custom:
    """Split wrapped ``customProperties`` into data, traits, external ids, markers, group."""
    out = _Custom()
    nested_markers: dict[str, Any] = {}
    nested_group_markers: dict[str, Any] = {}
    for key, value in custom.items():
        label = f"{CUSTOM}.{key}"
        if key in ("user_traits", "external_ids"):
            unwrapped = expect_object(unwrap(value, field=label), label)
            if key == "user_traits":
                out.traits = unwrapped
            else:
                out.external_ids = unwrapped
            nested_markers.update(_nested_markers(value, label))
        elif key == "consent":
            out.consent = unwrap(value, field=label)
        elif key in ("group_traits", "group_external_ids"):
            out.group[key] = expect_object(unwrap(value, field=label), label)
            nested_group_markers.update(_nested_markers(value, label, flag="igb"))
        elif isinstance(value, dict) and is_flag_set(value.get("ib")):
            out.markers[key] = _marker_value(value, label)
        elif isinstance(value, dict) and is_flag_set(value.get("igb")):
            out.group.setdefault("group_identify_markers", {})[key] = _marker_value(value, label)
        else:
            out.data[key] = unwrap(value, field=label)
    # A marker written directly in customProperties wins over one inside user_traits or
    # external_ids.
    out.markers = {**nested_markers, **out.markers}
    if nested_group_markers:
        group_markers = out.group.get("group_identify_markers", {})
        out.group["group_identify_markers"] = {**nested_group_markers, **group_markers}
    return out


def _nested_markers(value: object, label: str, flag: str = "ib") -> dict[str, Any]:
    """Collect markers (``ib``, or ``igb`` for groups) written inside a traits object."""
    inner = value["v"] if is_wrapper(value) else value
    if not isinstance(inner, dict):
        return {}
    return {
        key: _marker_value(item, f"{label}.{key}")
        for key, item in inner.items()
        if isinstance(item, dict) and is_flag_set(item.get(flag))
    }


def _marker_value(value: dict[str, Any], label: str) -> Any:
    """Return a marker's unwrapped value."""
    return unwrap(value if is_wrapper(value) else value.get("v"), field=label)


def _products(value: object) -> list[dict[str, Any]] | None:
    """Return ``productProperties`` as a list of unwrapped product objects, or None if absent."""
    if value is None:
        return None
    items = unwrap(value, field=PRODUCTS)
    if not isinstance(items, list):
        raise InvalidEvent(
            "invalid_field", f"{PRODUCTS} must be an array of objects, not {describe(items)}."
        )
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidEvent(
                "invalid_field",
                f"{PRODUCTS}[{index}] must be an object, not {describe(item)}.",
            )
    return items
