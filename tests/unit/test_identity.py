"""Unit tests for identity resolution and what identify events teach us to remember."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worker.events import Event
from worker.identity import Identity, memories, memory_keys, resolve
from worker.normalize import normalize, parse_json

RECEIVED_AT = 1_772_496_000


def event(**fields: Any) -> Event:
    """Build a track Event with the given fields."""
    base: dict[str, Any] = {
        "kind": "track",
        "name": "Added to cart",
        "timestamp": RECEIVED_AT,
        "dedupe_key": "msg:1",
        "source": "customerlabs",
    }
    return Event(**{**base, **fields})


def person(value: str) -> Identity:
    """An identified person's Identity."""
    return Identity(value, anonymous=False)


REMEMBERED = {("anon", "cl_1"): "anon-memory@x.io", ("user", "u_1"): "user-memory@x.io"}

# Each row fills every source up to and including one step of the lookup order, so the
# expected value proves that step wins over everything after it.
FULL = {
    "identify_markers": {"identify_by_email": "marker@x.io"},
    "external_ids": {"identify_by_email": "external@x.io"},
    "traits": {"identify_by_email": "trait-key@x.io", "email": "trait-email@x.io"},
    "anonymous_id": "cl_1",
    "user_id": "u_1",
}


@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        ((), "marker@x.io"),
        (("identify_markers",), "external@x.io"),
        (("identify_markers", "external_ids"), "trait-key@x.io"),
    ],
)
def test_lookup_order_markers_external_ids_traits(drop: tuple[str, ...], expected: str) -> None:
    """The marker wins, then external_ids, then the trait named by the key."""
    fields = {key: value for key, value in FULL.items() if key not in drop}
    assert resolve(event(**fields), "identify_by_email", REMEMBERED) == person(expected)


def test_email_trait_is_used_for_identify_by_email() -> None:
    """With identify_by_email, the email trait counts when the key itself is absent."""
    ev = event(traits={"email": "ada@example.com"}, anonymous_id="cl_1")
    assert resolve(ev, "identify_by_email", REMEMBERED) == person("ada@example.com")


def test_phone_trait_is_used_for_identify_by_phone() -> None:
    """With identify_by_phone, the phone trait counts when the key itself is absent."""
    ev = event(traits={"phone": "+44 20 7946 0958", "email": "ada@example.com"})
    assert resolve(ev, "identify_by_phone", {}) == person("+44 20 7946 0958")


def test_email_trait_is_not_used_for_other_keys() -> None:
    """A custom identify-by key never falls back to the email trait."""
    ev = event(traits={"email": "ada@example.com"}, anonymous_id="cl_1")
    assert resolve(ev, "crm_user_id", {}) == Identity("cl_1", anonymous=True)


def test_remembered_anonymous_id_comes_before_user_id() -> None:
    """After the event's own fields, the anonymous id's memory wins over the user id's."""
    ev = event(anonymous_id="cl_1", user_id="u_1")
    assert resolve(ev, "identify_by_email", REMEMBERED) == person("anon-memory@x.io")


def test_remembered_user_id_is_used() -> None:
    """An event carrying only a user id is attributed by that user id's memory."""
    assert resolve(event(user_id="u_1"), "identify_by_email", REMEMBERED) == person(
        "user-memory@x.io"
    )


def test_event_fields_win_over_memory() -> None:
    """What the event says about itself beats what an earlier identify taught."""
    ev = event(traits={"email": "now@x.io"}, anonymous_id="cl_1", user_id="u_1")
    assert resolve(ev, "identify_by_email", REMEMBERED) == person("now@x.io")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"user_id": "u_1"}, person("u_1")),
        ({"user_id": "u_1", "traits": {"user_id": "trait-u"}}, person("trait-u")),
        ({"user_id": "u_1", "external_ids": {"user_id": "ext-u"}}, person("ext-u")),
        ({"anonymous_id": "a_1"}, Identity("a_1", anonymous=True)),
    ],
)
def test_identify_by_user_id(fields: dict[str, Any], expected: Identity) -> None:
    """With identify_by user_id, the event's user id counts after external ids and traits."""
    assert resolve(event(source="segment", **fields), "user_id", {}) == expected


@pytest.mark.parametrize(
    "external_ids",
    [{"crm_user_id": "C-1001"}, {"crm_user_id": " C-1001 "}],
)
def test_custom_external_id(external_ids: dict[str, Any]) -> None:
    """A custom external id such as crm_user_id identifies the person, stripped."""
    assert resolve(event(external_ids=external_ids), "crm_user_id", {}) == person("C-1001")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1001, "1001"), (4155550123, "4155550123"), (1001.0, "1001"), (2.5, "2.5"), ("  x  ", "x")],
)
def test_numbers_become_text(value: object, expected: str) -> None:
    """Numeric identifiers are sent as text."""
    assert resolve(event(external_ids={"crm_user_id": value}), "crm_user_id", {}) == person(
        expected
    )


@pytest.mark.parametrize(
    "value", ["", "   ", None, True, False, [], {}, ["a@x.io"], float("nan"), float("inf")]
)
def test_unusable_values_fall_through(value: object) -> None:
    """Blank, boolean, non-finite or structured values are skipped for the next source."""
    ev = event(
        identify_markers={"identify_by_email": value},
        external_ids={"identify_by_email": value},
        traits={"identify_by_email": value, "email": "fallback@x.io"},
    )
    assert resolve(ev, "identify_by_email", {}) == person("fallback@x.io")


def test_blank_memory_falls_through() -> None:
    """A blank remembered identity is skipped like any other blank value."""
    ev = event(anonymous_id="cl_1", user_id="u_1")
    remembered = {("anon", "cl_1"): "  ", ("user", "u_1"): "user@x.io"}
    assert resolve(ev, "identify_by_email", remembered) == person("user@x.io")


def test_unresolved_with_anonymous_id_is_anonymous() -> None:
    """No identifier anywhere but an anonymous id: send as an anonymous event."""
    assert resolve(event(anonymous_id="cl_1"), "identify_by_email", {}) == Identity(
        "cl_1", anonymous=True
    )


def test_unresolved_without_anonymous_id_is_none() -> None:
    """No identifier and no anonymous id: nothing to send to."""
    assert resolve(event(user_id="u_9"), "identify_by_email", {}) is None


@pytest.mark.parametrize(
    ("fields", "keys"),
    [
        ({"anonymous_id": "a", "user_id": "u"}, [("anon", "a"), ("user", "u")]),
        ({"anonymous_id": "a"}, [("anon", "a")]),
        ({"user_id": "u"}, [("user", "u")]),
        ({}, []),
    ],
)
def test_memory_keys(fields: dict[str, Any], keys: list[tuple[str, str]]) -> None:
    """The lookups an event needs are its anonymous id then its user id, when present."""
    assert memory_keys(event(**fields)) == keys


@pytest.mark.parametrize(
    ("kind", "identifier", "expected"),
    [
        ("identify", "ada@example.com", [("anon", "a"), ("user", "u")]),
        ("identify", "  ", []),
        ("track", "ada@example.com", []),
        ("page", "ada@example.com", []),
        ("group", "ada@example.com", []),
    ],
)
def test_memories_come_from_identify_events_only(
    kind: str, identifier: str, expected: list[tuple[str, str]]
) -> None:
    """Only an identify event with a real identifier teaches its ids to be remembered."""
    ev = event(kind=kind, anonymous_id="a", user_id="u")
    assert memories(ev, identifier) == expected


def test_documented_customerlabs_identify_resolves_by_marker() -> None:
    """The doc's wrapped identify resolves to the marker's email."""
    raw = {
        "method": "identify",
        "customerlabs_user_id": "cl_2f6c",
        "properties": {
            "customProperties": {
                "user_traits": {
                    "t": "Object",
                    "v": {"email": {"t": "string", "v": "ada@example.com"}},
                },
                "identify_by_email": {"t": "string", "v": "ada@example.com", "ib": True},
                "external_ids": {
                    "t": "Object",
                    "v": {"crm_user_id": {"t": "string", "v": "C-1001"}},
                },
            }
        },
    }
    ev = normalize(raw, received_at=RECEIVED_AT)
    assert resolve(ev, "identify_by_email", {}) == person("ada@example.com")
    assert resolve(ev, "crm_user_id", {}) == person("C-1001")
    assert memories(ev, "ada@example.com") == [("anon", "cl_2f6c")]


def test_segment_track_with_only_user_id_after_identify() -> None:
    """A Segment identify teaches userId → email; a later userId-only track is attributed."""
    identify = normalize(
        {
            "type": "identify",
            "userId": "u_1001",
            "anonymousId": None,
            "traits": {"email": "ada@example.com"},
        },
        received_at=RECEIVED_AT,
    )
    found = resolve(identify, "identify_by_email", {})
    assert found == person("ada@example.com")
    remembered = dict.fromkeys(memories(identify, found.value), found.value)
    later = normalize(
        {"type": "track", "event": "Order Completed", "userId": "u_1001"}, received_at=RECEIVED_AT
    )
    assert resolve(later, "identify_by_email", remembered) == person("ada@example.com")
    assert resolve(later, "identify_by_email", {}) is None


def replay(name: str, identify_by: str) -> list[Identity | None]:
    """Resolve every event of a sample file in order, remembering as the worker would."""
    path = Path(__file__).resolve().parents[2] / "config" / "samples" / name
    remembered: dict[tuple[str, str], str] = {}
    found: list[Identity | None] = []
    for line in path.read_text("utf-8").splitlines():
        ev = normalize(parse_json(line), received_at=RECEIVED_AT)
        identity = resolve(ev, identify_by, remembered)
        if identity is not None and not identity.anonymous:
            remembered.update(dict.fromkeys(memories(ev, identity.value), identity.value))
        found.append(identity)
    return found


def test_customerlabs_sample_visitor_is_anonymous_until_identified() -> None:
    """In the sample, cl_9a41e7b3c2 browses anonymously, identifies, then is attributed."""
    found = replay("customerlabs.jsonl", "identify_by_email")
    anonymous = Identity("cl_9a41e7b3c2", anonymous=True)
    grace = person("grace@example.org")
    assert found[5:11] == [anonymous, anonymous, grace, grace, grace, grace]


def test_segment_sample_is_attributed_by_user_id_memory() -> None:
    """In the sample, the anonymous page precedes the identify; later calls carry only userId."""
    found = replay("segment.jsonl", "identify_by_email")
    ada = person("ada@example.com")
    assert found[0] == Identity("5f1c3a9e-2b7d-4e61-9c0a-7d8e9f0a1b2c", anonymous=True)
    assert found[1:7] == [ada] * 6
