"""Which Customer.io person an event belongs to: pure lookups over the event and memory."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from worker.events import Event

# Extra trait names tried for the built-in identify-by keys, after the key itself.
TRAIT_ALIASES = {"identify_by_email": ("email",), "identify_by_phone": ("phone",)}


@dataclass(slots=True)
class Identity:
    """The identifier to send; ``anonymous`` means it is an anonymous id, not a person's."""

    value: str
    anonymous: bool


def memory_keys(event: Event) -> list[tuple[str, str]]:
    """Return the remembered-identity keys this event may be attributed by, in lookup order."""
    keys: list[tuple[str, str]] = []
    if event.anonymous_id:
        keys.append(("anon", event.anonymous_id))
    if event.user_id:
        keys.append(("user", event.user_id))
    return keys


def resolve(
    event: Event, identify_by: str, remembered: Mapping[tuple[str, str], str]
) -> Identity | None:
    """Find the event's identifier; fall back to its anonymous id, else None."""
    # The candidates in the documented lookup order, each tried as it is found: most
    # events carry their identifier in one of the first three places looked.
    for candidate in (
        event.identify_markers.get(identify_by),
        event.external_ids.get(identify_by),
        event.traits.get(identify_by),
    ):
        value = _usable(candidate)
        if value is not None:
            return Identity(value, anonymous=False)
    for candidate in _later_candidates(event, identify_by, remembered):
        value = _usable(candidate)
        if value is not None:
            return Identity(value, anonymous=False)
    if event.anonymous_id:
        return Identity(event.anonymous_id, anonymous=True)
    return None


def memories(event: Event, identifier: str) -> list[tuple[str, str]]:
    """Return the keys an identify event teaches us to map to ``identifier``; none otherwise."""
    if event.kind != "identify" or not identifier.strip():
        return []
    return memory_keys(event)


def _later_candidates(
    event: Event, identify_by: str, remembered: Mapping[tuple[str, str], str]
) -> Iterator[object]:
    """The candidates after the marker, external id and trait, in lookup order."""
    for alias in TRAIT_ALIASES.get(identify_by, ()):
        yield event.traits.get(alias)
    if identify_by == "user_id":
        yield event.user_id
    for key in memory_keys(event):
        yield remembered.get(key)


def _usable(value: object) -> str | None:
    """Return a value as a non-blank identifier string, or None when it cannot be one."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return str(int(value)) if value.is_integer() else str(value)
    return None
