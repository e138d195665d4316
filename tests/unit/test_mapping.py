"""Tests for mapping normalised events to Customer.io operations."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from worker import cio_limits as lim
from worker.errors import RejectedEvent
from worker.events import Event
from worker.identity import Identity
from worker.mapping import build_operation, identifiers_for, page_name, person_attributes

PERSON = Identity("ada@example.com", anonymous=False)
ANON = Identity("anon-1", anonymous=True)


def _event(kind: str = "track", name: str = "Added to cart", **kw: Any) -> Event:
    return Event(
        kind=kind, name=name, timestamp=1_700_000_000, dedupe_key="k", source="segment", **kw
    )  # type: ignore[arg-type]


def _body(event: Event, identity: Identity = PERSON, **kw: Any) -> dict[str, Any]:
    op = build_operation(event, identity, "EVT1", identify_by="identify_by_email", **kw)
    return json.loads(op.encoded)


def _reason(event: Event, identity: Identity = PERSON, **kw: Any) -> str:
    kw.setdefault("identify_by", "identify_by_email")
    with pytest.raises(RejectedEvent) as info:
        build_operation(event, identity, "EVT1", **kw)
    return info.value.reason


def test_identify_operation_carries_attributes_and_email() -> None:
    """An identify becomes a v2 person identify with the traits and the email filled in."""
    body = _body(_event("identify", "Create user", traits={"plan": "pro"}))
    assert body == {
        "type": "person",
        "identifiers": {"email": "ada@example.com"},
        "action": "identify",
        "attributes": {"plan": "pro", "email": "ada@example.com"},
    }


def test_identify_operation_has_no_event_id() -> None:
    """An identify operation is not an event, so it carries no event id."""
    op = build_operation(
        _event("identify", "Create user"), PERSON, "EVT1", identify_by="identify_by_email"
    )
    assert (op.endpoint, op.event_id) == ("batch", None)


def test_identify_includes_anonymous_id_so_visits_merge() -> None:
    """The anonymous id is added to identify attributes so earlier visits merge."""
    body = _body(_event("identify", "Create user", anonymous_id="anon-9"))
    assert body["attributes"]["anonymous_id"] == "anon-9"


@pytest.mark.parametrize(("kind", "action"), [("track", "event"), ("screen", "screen")])
def test_event_operation_shape(kind: str, action: str) -> None:
    """Track and screen events become person operations with name, id, timestamp, data."""
    body = _body(_event(kind, "Added to cart", properties={"sku": "A1"}))
    assert body == {
        "type": "person",
        "identifiers": {"email": "ada@example.com"},
        "action": action,
        "name": "Added to cart",
        "id": "EVT1",
        "timestamp": 1_700_000_000,
        "attributes": {"sku": "A1"},
    }


def test_page_operation_is_named_by_url() -> None:
    """A page view's name is its URL and its action is page."""
    body = _body(_event("page", "Page viewed", url="https://shop.example/cart"))
    assert (body["action"], body["name"]) == ("page", "https://shop.example/cart")


def test_anonymous_event_uses_v1_body() -> None:
    """An event with only an anonymous id becomes a v1 anonymous event body."""
    op = build_operation(
        _event(properties={"sku": "A1"}), ANON, "EVT1", identify_by="identify_by_email"
    )
    assert op.endpoint == "anonymous"
    assert json.loads(op.encoded) == {
        "name": "Added to cart",
        "anonymous_id": "anon-1",
        "id": "EVT1",
        "timestamp": 1_700_000_000,
        "data": {"sku": "A1"},
    }


@pytest.mark.parametrize("kind", ["page", "screen"])
def test_anonymous_page_and_screen_carry_type(kind: str) -> None:
    """Anonymous page and screen events name their type in the v1 body."""
    body = _body(_event(kind, "Home", url="https://shop.example/"), ANON)
    assert body["type"] == kind


def test_anonymous_identify_sends_traits_as_data_without_anonymous_id() -> None:
    """An anonymous identify sends its traits as data and leaves the anonymous id out of it."""
    event = _event("identify", "Create user", traits={"plan": "pro"}, anonymous_id="anon-1")
    body = _body(event, ANON)
    assert body["data"] == {"plan": "pro"}


def test_group_event_is_refused() -> None:
    """Group events must be skipped before mapping."""
    with pytest.raises(ValueError):
        build_operation(_event("group", "Group"), PERSON, "E", identify_by="identify_by_email")


@pytest.mark.parametrize(
    ("value", "identify_by", "expected"),
    [
        ("ada@example.com", "identify_by_email", {"email": "ada@example.com"}),
        ("user-42", "identify_by_id", {"id": "user-42"}),
        ("cio_abc123", "identify_by_id", {"cio_id": "abc123"}),
    ],
)
def test_identifiers_for(value: str, identify_by: str, expected: dict[str, str]) -> None:
    """The identifiers object is email, id or cio_id depending on the value and mode."""
    assert identifiers_for(value, identify_by) == expected


def test_identifiers_for_refuses_non_email() -> None:
    """Identifying by email refuses a value that is not an email address."""
    with pytest.raises(RejectedEvent) as info:
        identifiers_for("not-an-email", "identify_by_email")
    assert info.value.reason == "invalid_identifier"


def test_identifiers_for_refuses_long_id() -> None:
    """A person id over 150 bytes is a limit_exceeded rejection."""
    with pytest.raises(RejectedEvent) as info:
        identifiers_for("x" * (lim.PERSON_ID_MAX_BYTES + 1), "identify_by_id")
    assert info.value.reason == "limit_exceeded"


def test_identifiers_for_accepts_id_at_limit() -> None:
    """A person id of exactly 150 bytes is accepted."""
    value = "x" * lim.PERSON_ID_MAX_BYTES
    assert identifiers_for(value, "identify_by_id") == {"id": value}


LONG_URL = "https://shop.example/" + "p" * 60 + "?" + "q=" + "z" * 60


def test_page_name_short_url_unchanged() -> None:
    """A URL within 100 bytes is the page name as is."""
    assert page_name("https://shop.example/a?b=1", "dead_letter") == "https://shop.example/a?b=1"


def test_page_name_overflow_dead_letter() -> None:
    """With dead_letter, an over-long URL is rejected as limit_exceeded."""
    with pytest.raises(RejectedEvent) as info:
        page_name(LONG_URL, "dead_letter")
    assert info.value.reason == "limit_exceeded"


def test_page_name_overflow_strip_query() -> None:
    """With strip_query, the query string is dropped when that makes it fit."""
    assert page_name(LONG_URL, "strip_query") == "https://shop.example/" + "p" * 60


def test_page_name_overflow_strip_query_still_too_long() -> None:
    """With strip_query, a path that is still too long is rejected."""
    url = "https://shop.example/" + "p" * 120 + "?q=1"
    with pytest.raises(RejectedEvent):
        page_name(url, "strip_query")


def test_page_name_overflow_truncate() -> None:
    """With truncate, the name is cut to at most 100 bytes without splitting characters."""
    url = "https://shop.example/" + "é" * 80
    name = page_name(url, "truncate")
    assert len(name.encode()) <= lim.EVENT_NAME_MAX_BYTES
    assert url.startswith(name)


@pytest.mark.parametrize("url", [None, "", "   "])
def test_page_without_url_is_invalid(url: str | None) -> None:
    """A page view with no URL is an invalid_event rejection."""
    with pytest.raises(RejectedEvent) as info:
        page_name(url, "truncate")
    assert info.value.reason == "invalid_event"


def _big_attributes() -> dict[str, Any]:
    return {f"a{i}": i for i in range(lim.ATTRIBUTES_PER_IDENTIFY_MAX + 1)}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_event(name="   "), "invalid_event"),
        (_event(name="n" * (lim.EVENT_NAME_MAX_BYTES + 1)), "limit_exceeded"),
        (_event(properties={"d": "x" * lim.EVENT_DATA_MAX_BYTES}), "limit_exceeded"),
        (_event(properties={"d": "x" * lim.BATCH_OPERATION_MAX_BYTES}), "limit_exceeded"),
        (_event("identify", "Create user", traits=_big_attributes()), "limit_exceeded"),
        (
            _event("identify", "Create user", traits={"k" * (lim.ATTRIBUTE_NAME_MAX_BYTES + 1): 1}),
            "limit_exceeded",
        ),
        (
            _event(
                "identify", "Create user", traits={"bio": "b" * (lim.ATTRIBUTE_VALUE_MAX_BYTES + 1)}
            ),
            "limit_exceeded",
        ),
        (
            _event("identify", "Create user", traits={"tags": ["t" * 600, "u" * 600]}),
            "limit_exceeded",
        ),
        (_event("identify", "Create user", traits={"created_at": "not a date"}), "invalid_event"),
    ],
    ids=[
        "blank-name",
        "long-name",
        "event-data",
        "operation-size",
        "attribute-count",
        "attribute-name",
        "attribute-value",
        "attribute-value-json",
        "bad-created-at",
    ],
)
def test_limits_reject_with_reason(event: Event, reason: str) -> None:
    """Each Customer.io limit turns into a RejectedEvent with a stable reason."""
    assert _reason(event) == reason


def test_anonymous_request_size_limit() -> None:
    """An anonymous event body over 32 KB is rejected as limit_exceeded."""
    event = _event(properties={"d": "x" * lim.ENTITY_REQUEST_MAX_BYTES})
    assert _reason(event, ANON) == "limit_exceeded"


def test_anonymous_page_overflow_follows_mode() -> None:
    """Anonymous page views use the same page name overflow mode."""
    body = _body(_event("page", "Page viewed", url=LONG_URL), ANON, page_overflow="strip_query")
    assert body["name"] == "https://shop.example/" + "p" * 60


def test_attribute_count_at_limit_accepted() -> None:
    """Exactly 300 attributes (email included) is accepted."""
    traits = {f"a{i}": i for i in range(lim.ATTRIBUTES_PER_IDENTIFY_MAX - 1)}
    body = _body(_event("identify", "Create user", traits=traits))
    assert len(body["attributes"]) == lim.ATTRIBUTES_PER_IDENTIFY_MAX


@pytest.mark.parametrize("key", ["created_at", "createdAt"])
def test_created_at_iso_becomes_unix_seconds(key: str) -> None:
    """An ISO created_at (or createdAt) becomes integer Unix seconds under created_at."""
    attributes = person_attributes(_event("identify", "U", traits={key: "2023-01-02T03:04:05Z"}))
    assert attributes == {"created_at": 1_672_628_645}


def test_created_at_int_kept() -> None:
    """An integer created_at is left alone."""
    assert person_attributes(_event("identify", "U", traits={"created_at": 5})) == {"created_at": 5}


def test_identify_keeps_explicit_email_trait() -> None:
    """An email trait already present is not overwritten by the identifier."""
    event = replace(_event("identify", "U"), traits={"email": "other@example.com"})
    assert _body(event)["attributes"]["email"] == "other@example.com"
