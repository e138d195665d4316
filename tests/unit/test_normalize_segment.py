"""Unit tests for normalising Segment-spec events."""

from __future__ import annotations

from typing import Any

import pytest

from worker.errors import InvalidEvent
from worker.events import Event
from worker.normalize import normalize

RECEIVED_AT = 1_772_496_000  # 2026-03-03T00:00:00Z
T = 1_772_446_500  # 2026-03-02T10:15:00Z


def norm(raw: object, page_view_event: str = "Page viewed") -> Event:
    """Normalise with a fixed arrival time."""
    return normalize(raw, received_at=RECEIVED_AT, page_view_event=page_view_event)


def reason_of(raw: object) -> InvalidEvent:
    """Normalise ``raw`` and return the InvalidEvent it raises."""
    with pytest.raises(InvalidEvent) as caught:
        norm(raw)
    return caught.value


def track(**fields: Any) -> dict[str, Any]:
    """Build a Segment track call with the given fields."""
    return {"type": "track", "event": "Added to cart", "userId": "u_1", **fields}


@pytest.mark.parametrize(
    ("raw", "kind", "name"),
    [
        ({"type": "track", "event": "Order Completed"}, "track", "Order Completed"),
        ({"type": "Track", "event": " Order Completed "}, "track", "Order Completed"),
        ({"type": "page"}, "page", "Page viewed"),
        ({"type": "PAGE", "name": "Pricing"}, "page", "Page viewed"),
        ({"type": "screen", "name": "Home"}, "screen", "Screen viewed"),
        ({"type": "identify"}, "identify", "Create user"),
        ({"type": "group", "groupId": "g1"}, "group", "Create group"),
    ],
)
def test_type_gives_kind_and_name(raw: dict[str, Any], kind: str, name: str) -> None:
    """Each Segment type maps to its kind and the shared workflow name."""
    event = norm(raw)
    assert (event.kind, event.name, event.source) == (kind, name, "segment")


def test_page_uses_configured_page_view_name() -> None:
    """A Segment page takes the configured page-view name."""
    assert norm({"type": "page"}, page_view_event="Visited page").name == "Visited page"


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        ({"type": None}, "missing_field", "type"),
        ({"type": 3}, "invalid_field", "type"),
        ({"type": "merge", "previousId": "x"}, "invalid_field", "type"),
        ({"type": "track"}, "missing_field", "event"),
        ({"type": "track", "event": None}, "missing_field", "event"),
        ({"type": "track", "event": "   "}, "missing_field", "event"),
        ({"type": "track", "event": 5}, "invalid_field", "event"),
        ({"type": "track", "event": ["x"]}, "invalid_field", "event"),
    ],
)
def test_type_and_event_errors(raw: dict[str, Any], reason: str, field: str) -> None:
    """A missing or wrong type, or a track without a usable event name, is refused."""
    error = reason_of(raw)
    assert error.reason == reason
    assert field in error.detail


@pytest.mark.parametrize("kind", ["page", "screen"])
def test_page_and_screen_name_goes_into_properties(kind: str) -> None:
    """A page/screen name is kept as the name property."""
    event = norm({"type": kind, "name": "Pricing", "properties": {"path": "/pricing"}})
    assert event.properties == {"path": "/pricing", "name": "Pricing"}


@pytest.mark.parametrize(
    ("name", "properties", "expected"),
    [
        ("Pricing", {"name": "Own"}, {"name": "Own"}),
        (5, {}, {}),
        ("  ", {}, {}),
        (None, {}, {}),
    ],
)
def test_page_name_never_overrides_or_adds_junk(
    name: object, properties: dict[str, Any], expected: dict[str, Any]
) -> None:
    """An existing name property wins; a non-text or blank page name is not added."""
    assert norm({"type": "page", "name": name, "properties": properties}).properties == expected


def test_track_name_is_not_a_property() -> None:
    """A track call's event name is not copied into its properties."""
    assert norm(track(name="ignored", properties={"a": 1})).properties == {"a": 1}


def test_identify_traits_merge_over_context_traits() -> None:
    """Identify traits win over context.traits, and both are kept."""
    raw = {
        "type": "identify",
        "userId": "u_1",
        "traits": {"email": "new@x.io", "plan": "pro"},
        "context": {"traits": {"email": "old@x.io", "city": "Leeds"}},
    }
    assert norm(raw).traits == {"email": "new@x.io", "city": "Leeds", "plan": "pro"}


def test_track_takes_context_traits_only() -> None:
    """A track call's person traits are its context.traits; a stray top-level traits is ignored."""
    raw = track(traits={"email": "stray@x.io"}, context={"traits": {"email": "ctx@x.io"}})
    assert norm(raw).traits == {"email": "ctx@x.io"}


def test_group_traits_describe_the_group_not_the_person() -> None:
    """A group call's traits and groupId go under properties; person traits are context.traits."""
    raw = {
        "type": "group",
        "userId": "u_1",
        "groupId": 42,
        "traits": {"name": "Acme", "email": "billing@acme.test"},
        "context": {"traits": {"email": "ada@example.com"}},
    }
    event = norm(raw)
    assert event.traits == {"email": "ada@example.com"}
    assert event.properties == {
        "group_traits": {"name": "Acme", "email": "billing@acme.test"},
        "group_id": "42",
    }


@pytest.mark.parametrize(
    ("fields", "user_id", "anonymous_id"),
    [
        ({"userId": "u_1", "anonymousId": "a_1"}, "u_1", "a_1"),
        ({"userId": " u_1 ", "anonymousId": None}, "u_1", None),
        ({"userId": 1002}, "1002", None),
        ({"userId": None, "anonymousId": 77}, None, "77"),
        ({"userId": "", "anonymousId": "  "}, None, None),
        ({}, None, None),
    ],
)
def test_user_and_anonymous_ids(
    fields: dict[str, Any], user_id: str | None, anonymous_id: str | None
) -> None:
    """userId and anonymousId are stripped text; integers become text; null or blank is None."""
    raw = {"type": "track", "event": "X", **fields}
    event = norm(raw)
    assert (event.user_id, event.anonymous_id) == (user_id, anonymous_id)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"userId": True}, "userId"),
        ({"userId": 1.5}, "userId"),
        ({"userId": {"id": 1}}, "userId"),
        ({"anonymousId": ["a"]}, "anonymousId"),
        ({"anonymousId": False}, "anonymousId"),
        ({"messageId": {"id": 1}}, "messageId"),
    ],
)
def test_ids_of_wrong_type_are_invalid(fields: dict[str, Any], field: str) -> None:
    """Ids that are not text or integers are invalid_field naming the field."""
    error = reason_of({"type": "track", "event": "X", **fields})
    assert error.reason == "invalid_field"
    assert field in error.detail


@pytest.mark.parametrize(
    ("context", "properties", "expected"),
    [
        (
            {"page": {"url": "https://a.test/ctx"}},
            {"url": "https://a.test/p"},
            "https://a.test/ctx",
        ),
        ({"page": {"path": "/x"}}, {"url": "https://a.test/p"}, "https://a.test/p"),
        ({"page": {"url": " "}}, {"url": "https://a.test/p"}, "https://a.test/p"),
        ({}, {"url": 5}, None),
        ({}, {}, None),
    ],
)
def test_url_precedence(
    context: dict[str, Any], properties: dict[str, Any], expected: str | None
) -> None:
    """The URL is context.page.url, else properties.url."""
    raw = {"type": "page", "context": context, "properties": properties}
    assert norm(raw).url == expected


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "page", "properties": "x"}, "properties"),
        ({"type": "page", "properties": [1]}, "properties"),
        ({"type": "page", "context": "x"}, "context"),
        ({"type": "page", "context": {"page": "https://a.test/"}}, "context.page"),
        ({"type": "page", "context": {"page": {"url": 5}}}, "context.page.url"),
        ({"type": "page", "context": {"traits": ["x"]}}, "context.traits"),
        ({"type": "identify", "traits": "ada"}, "traits"),
        ({"type": "group", "groupId": True}, "groupId"),
    ],
)
def test_wrong_types_are_invalid_fields(raw: dict[str, Any], field: str) -> None:
    """A wrongly typed part of a Segment call is invalid_field naming it."""
    error = reason_of(raw)
    assert error.reason == "invalid_field"
    assert field in error.detail


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"timestamp": "2026-03-02T15:45:00.123+05:30"}, T),
        ({"timestamp": "2026-03-02T10:15:00.123Z", "originalTimestamp": "2026-03-01T00:00:00Z"}, T),
        (
            {
                "timestamp": None,
                "originalTimestamp": "2026-03-02T10:15:00Z",
                "sentAt": "2026-03-01T00:00:00Z",
            },
            T,
        ),
        ({"timestamp": "", "originalTimestamp": "2026-03-02T10:15:00Z"}, T),
        ({"sentAt": "2026-03-02T10:15:00.999Z"}, T),
        ({"timestamp": T * 1000}, T),
        ({}, RECEIVED_AT),
    ],
)
def test_timestamp_preference(fields: dict[str, Any], expected: int) -> None:
    """timestamp wins, then originalTimestamp, then sentAt, then the arrival time."""
    assert norm(track(**fields)).timestamp == expected


@pytest.mark.parametrize("field", ["timestamp", "originalTimestamp", "sentAt"])
def test_bad_timestamp_names_its_field(field: str) -> None:
    """An unreadable timestamp is invalid_timestamp naming the field it came from."""
    error = reason_of(track(**{field: "soon"}))
    assert error.reason == "invalid_timestamp"
    assert error.detail.startswith(field)


def test_sdk_extras_are_accepted_and_ignored() -> None:
    """integrations, context.library and other SDK fields change nothing."""
    plain = norm(track(messageId="m1", properties={"a": 1}))
    noisy = norm(
        track(
            messageId="m1",
            properties={"a": 1},
            anonymousId=None,
            integrations={"All": True, "Mixpanel": False},
            context={
                "library": {"name": "analytics-python", "version": "2.3.2"},
                "ip": "203.0.113.9",
            },
            channel="server",
            version=2,
            receivedAt="2026-03-02T10:15:01Z",
        )
    )
    assert noisy == plain


@pytest.mark.parametrize(
    ("value", "key"), [("ajs-1", "msg:ajs-1"), (" ajs-1 ", "msg:ajs-1"), (99, "msg:99")]
)
def test_message_id_is_the_dedupe_key(value: object, key: str) -> None:
    """messageId (text or an integer) is the de-duplication identity."""
    assert norm(track(messageId=value)).dedupe_key == key


def test_properties_are_copied_not_shared() -> None:
    """Changing the event's properties does not change the raw event."""
    raw = track(properties={"products": [{"id": "p1"}]})
    norm(raw).properties["products"].append({"id": "p2"})
    assert raw["properties"] == {"products": [{"id": "p1"}]}


def test_segment_values_are_not_unwrapped() -> None:
    """Segment values are taken as they are, even when they look like a {t, v} pair."""
    raw = track(properties={"size": {"t": "number", "v": "10"}})
    assert norm(raw).properties == {"size": {"t": "number", "v": "10"}}


def test_alias_is_read_as_merge_users() -> None:
    """An alias call keeps both ids: ``userId`` as the user and ``previousId`` as a property."""
    event = normalize(
        {"type": "alias", "userId": "u-2", "previousId": "anon-1"}, received_at=RECEIVED_AT
    )
    assert (event.kind, event.name, event.user_id) == ("alias", "Merge users", "u-2")
    assert event.properties == {"previous_id": "anon-1"}
