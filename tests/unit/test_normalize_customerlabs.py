"""Unit tests for normalising CustomerLabs-shaped events (envelope and queue tuple)."""

from __future__ import annotations

from typing import Any

import pytest

from worker.errors import InvalidEvent
from worker.events import Event
from worker.normalize import normalize

RECEIVED_AT = 1_772_496_000  # 2026-03-03T00:00:00Z


def s(value: object) -> dict[str, Any]:
    """Wrap a value as a CustomerLabs string."""
    return {"t": "string", "v": value}


def n(value: object) -> dict[str, Any]:
    """Wrap a value as a CustomerLabs number."""
    return {"t": "number", "v": value}


def obj(value: dict[str, Any], t: str = "Object") -> dict[str, Any]:
    """Wrap an object as CustomerLabs does."""
    return {"t": t, "v": value}


def envelope(custom: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """Build a trackClick envelope with the given customProperties and top-level fields."""
    raw: dict[str, Any] = {"method": "trackClick", "event_name": "Added to cart"}
    if custom is not None:
        raw["properties"] = {"customProperties": custom}
    raw.update(fields)
    return raw


def norm(raw: object, page_view_event: str = "Page viewed") -> Event:
    """Normalise with a fixed arrival time."""
    return normalize(raw, received_at=RECEIVED_AT, page_view_event=page_view_event)


def reason_of(raw: object) -> InvalidEvent:
    """Normalise ``raw`` and return the InvalidEvent it raises."""
    with pytest.raises(InvalidEvent) as caught:
        norm(raw)
    return caught.value


DOC_IDENTIFY = {
    "method": "identify",
    "customerlabs_user_id": "cl_2f6c",
    "timestamp": "2026-03-02T10:16:10Z",
    "properties": {
        "customProperties": {
            "user_traits": {
                "t": "Object",
                "v": {
                    "first_name": {"t": "string", "v": "Ada"},
                    "email": {"t": "string", "v": "ada@example.com"},
                },
            },
            "identify_by_email": {"t": "string", "v": "ada@example.com", "ib": True},
            "external_ids": {
                "t": "Object",
                "v": {"crm_user_id": {"t": "string", "v": "C-1001"}},
            },
        }
    },
}


def test_documented_identify_example() -> None:
    """The shared doc's identify example normalises to the expected Event."""
    event = norm(DOC_IDENTIFY)
    assert event.kind == "identify"
    assert event.name == "Create user"
    assert event.source == "customerlabs"
    assert event.timestamp == 1_772_446_570
    assert event.traits == {"first_name": "Ada", "email": "ada@example.com"}
    assert event.external_ids == {"crm_user_id": "C-1001"}
    assert event.identify_markers == {"identify_by_email": "ada@example.com"}
    assert event.properties == {}
    assert event.anonymous_id == "cl_2f6c"
    assert event.user_id is None
    assert event.message_id is None
    assert event.dedupe_key.startswith("sha256:")


@pytest.mark.parametrize(
    ("method", "event_name", "name", "kind"),
    [
        ("identify", None, "Create user", "identify"),
        ("identify", "IdentifyUser", "IdentifyUser", "identify"),
        ("group", None, "Create group", "group"),
        ("group", "Update group", "Update group", "group"),
        ("pageview", None, "Page viewed", "page"),
        ("pageview", "", "Page viewed", "page"),
        ("pageview", "Page viewed", "Page viewed", "page"),
        ("pageview", "Product viewed", "Product viewed", "track"),
        ("trackClick", "Added to cart", "Added to cart", "track"),
        ("trackSubmit", "Contact form submitted", "Contact form submitted", "track"),
        ("track", "Purchased", "Purchased", "track"),
        ("TRACKCLICK", " Added to cart ", "Added to cart", "track"),
        ("PageView", None, "Page viewed", "page"),
        (" identify ", None, "Create user", "identify"),
    ],
)
def test_method_gives_name_and_kind(
    method: str, event_name: str | None, name: str, kind: str
) -> None:
    """Each method gets its default name and kind, matched case-insensitively."""
    raw: dict[str, Any] = {"method": method}
    if event_name is not None:
        raw["event_name"] = event_name
    event = norm(raw)
    assert (event.name, event.kind) == (name, kind)


@pytest.mark.parametrize(
    ("event_name", "name", "kind"),
    [(None, "Visited page", "page"), ("Page viewed", "Page viewed", "track")],
)
def test_configured_page_view_name(event_name: str | None, name: str, kind: str) -> None:
    """Only a pageview named as the configured page-view event is a page."""
    raw: dict[str, Any] = {"method": "pageview"}
    if event_name is not None:
        raw["event_name"] = event_name
    event = norm(raw, page_view_event="Visited page")
    assert (event.name, event.kind) == (name, kind)


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        ({"method": None}, "missing_field", "method"),
        ({"method": 5}, "invalid_field", "method"),
        ({"method": "alias"}, "invalid_field", "method"),
        ({"method": ["track"]}, "invalid_field", "method"),
        ({"method": "trackClick"}, "missing_field", "event_name"),
        ({"method": "trackSubmit", "event_name": "  "}, "missing_field", "event_name"),
        ({"method": "track", "event_name": None}, "missing_field", "event_name"),
        ({"method": "track", "event_name": 12}, "invalid_field", "event_name"),
        (
            {"method": "track", "event_name": {"t": "string", "v": "x"}},
            "invalid_field",
            "event_name",
        ),
    ],
)
def test_method_and_name_errors(raw: dict[str, Any], reason: str, field: str) -> None:
    """A missing or wrong method or event name is refused with the field named."""
    error = reason_of(raw)
    assert error.reason == reason
    assert field in error.detail


@pytest.mark.parametrize(
    "user_traits",
    [
        obj({"email": s("ada@example.com"), "age": n("36")}, "Object"),
        obj({"email": s("ada@example.com"), "age": n("36")}, "object"),
        {"email": s("ada@example.com"), "age": n(36)},
        {"email": "ada@example.com", "age": 36},
        {"email": "ada@example.com", "age": n("36")},
    ],
    ids=["Object", "object", "plain-wrapped-leaves", "bare", "mixed"],
)
def test_user_traits_variants(user_traits: dict[str, Any]) -> None:
    """Wrapped and plain user_traits, and numbers as text, read the same."""
    event = norm(envelope({"user_traits": user_traits}, method="identify"))
    assert event.traits == {"email": "ada@example.com", "age": 36}
    assert "user_traits" not in event.properties


@pytest.mark.parametrize(
    "external_ids",
    [
        obj({"crm_user_id": s("C-1"), "customerlabs_user_id": s("cl_1")}),
        obj({"crm_user_id": s("C-1"), "customerlabs_user_id": s("cl_1")}, "object"),
        {"crm_user_id": s("C-1"), "customerlabs_user_id": s("cl_1")},
        {"crm_user_id": "C-1", "customerlabs_user_id": "cl_1"},
    ],
    ids=["Object", "object", "plain-wrapped-leaves", "bare"],
)
def test_external_ids_variants(external_ids: dict[str, Any]) -> None:
    """Wrapped and plain external_ids read the same and supply the anonymous id."""
    event = norm(envelope({"external_ids": external_ids}))
    assert event.external_ids == {"crm_user_id": "C-1", "customerlabs_user_id": "cl_1"}
    assert event.anonymous_id == "cl_1"
    assert "external_ids" not in event.properties


@pytest.mark.parametrize(
    ("marker", "value"),
    [
        ({"t": "string", "v": "ada@example.com", "ib": True}, "ada@example.com"),
        ({"t": "string", "v": " ada@example.com", "ib": "true"}, " ada@example.com"),
        ({"t": "number", "v": "4155550123", "ib": True}, 4155550123),
        ({"v": "ada@example.com", "ib": True}, "ada@example.com"),
    ],
)
def test_identify_marker_is_recorded_not_a_property(marker: dict[str, Any], value: object) -> None:
    """A leaf with ib set is recorded by key in identify_markers, not in properties."""
    event = norm(envelope({"identify_by_email": marker, "plan": s("pro")}, method="identify"))
    assert event.identify_markers == {"identify_by_email": value}
    assert event.properties == {"plan": "pro"}


def test_marker_with_ib_false_is_a_property() -> None:
    """A leaf with ib false is ordinary data."""
    event = norm(envelope({"identify_by_email": {"t": "string", "v": "a@b.c", "ib": False}}))
    assert event.identify_markers == {}
    assert event.properties == {"identify_by_email": "a@b.c"}


@pytest.mark.parametrize("holder", ["user_traits", "external_ids"])
def test_marker_inside_traits_or_external_ids_is_recorded(holder: str) -> None:
    """A marker written inside user_traits or external_ids is recorded and kept there too."""
    marker = {"t": "string", "v": "ada@example.com", "ib": True}
    event = norm(envelope({holder: obj({"identify_by_email": marker})}, method="identify"))
    assert event.identify_markers == {"identify_by_email": "ada@example.com"}
    kept = event.traits if holder == "user_traits" else event.external_ids
    assert kept == {"identify_by_email": "ada@example.com"}


def test_top_level_marker_wins_over_nested_one() -> None:
    """A marker directly in customProperties overrides one inside external_ids."""
    custom = {
        "external_ids": obj({"identify_by_email": {"t": "string", "v": "old@x.io", "ib": True}}),
        "identify_by_email": {"t": "string", "v": "new@x.io", "ib": True},
    }
    assert norm(envelope(custom)).identify_markers == {"identify_by_email": "new@x.io"}


GROUP_CUSTOM = {
    "group_traits": obj({"name": s("Acme"), "employees": n("250")}),
    "group_external_ids": {"company_domain": s("acme.test")},
    "identify_by_company_domain": {"t": "string", "v": "acme.test", "igb": True},
    "plan": s("enterprise"),
}


def test_group_event_keeps_group_data_under_properties() -> None:
    """A group call carries its traits, external ids and group markers in properties, and
    the value flagged igb is the object's id."""
    event = norm(envelope(GROUP_CUSTOM, method="group", event_name=None))
    assert event.kind == "group"
    assert event.properties == {
        "plan": "enterprise",
        "group_traits": {"name": "Acme", "employees": 250},
        "group_external_ids": {"company_domain": "acme.test"},
        "group_identify_markers": {"identify_by_company_domain": "acme.test"},
        "group_id": "acme.test",
    }
    assert event.group_id == "acme.test"
    assert event.identify_markers == {}


def test_group_marker_inside_group_traits_names_the_object() -> None:
    """An igb flag inside group_traits (wrapped) marks the object id too."""
    custom = {
        "group_traits": {
            "t": "Object",
            "v": {"name": s("Acme"), "account_id": {"t": "string", "v": "A-7", "igb": True}},
        }
    }
    event = norm(envelope(custom, method="group", event_name=None))
    assert event.group_id == "A-7"
    assert event.properties["group_traits"] == {"name": "Acme", "account_id": "A-7"}


def test_a_track_names_its_object_by_context_group_id() -> None:
    """Object Deleted from a CustomerLabs sender names the object by context.groupId."""
    raw = envelope({}, method="track", event_name="Object Deleted")
    raw["context"] = {"groupId": "acme"}
    assert norm(raw).group_id == "acme"


def test_other_events_drop_group_data() -> None:
    """Group data on a non-group call is not event data."""
    assert norm(envelope(GROUP_CUSTOM)).properties == {"plan": "enterprise"}


def test_custom_properties_are_unwrapped_event_data() -> None:
    """customProperties, minus reserved keys, is the unwrapped event data."""
    custom = {
        "page_url": s("https://shop.example.com/p/1"),
        "currency": s("INR"),
        "value": n("1500.50"),
        "in_stock": {"t": "boolean", "v": "true"},
        "tags": {"t": "array", "v": [s("summer"), s("linen")]},
        "meta": obj({"source": s("home")}),
        "bare": 3,
    }
    assert norm(envelope(custom)).properties == {
        "page_url": "https://shop.example.com/p/1",
        "currency": "INR",
        "value": 1500.5,
        "in_stock": True,
        "tags": ["summer", "linen"],
        "meta": {"source": "home"},
        "bare": 3,
    }


def test_wrapped_custom_properties_are_read() -> None:
    """customProperties itself may arrive wrapped as an Object."""
    raw = {
        "method": "track",
        "event_name": "X",
        "properties": {"customProperties": obj({"a": n("1")})},
    }
    assert norm(raw).properties == {"a": 1}


def test_stray_properties_beside_custom_properties_are_kept() -> None:
    """Properties written beside customProperties are kept; customProperties wins a clash."""
    raw = {
        "method": "track",
        "event_name": "X",
        "properties": {
            "ordertotal": n("99"),
            "a": s("outer"),
            "customProperties": {"a": s("inner")},
        },
    }
    assert norm(raw).properties == {"ordertotal": 99, "a": "inner"}


PRODUCT_WRAPPED = {
    "product_id": n("12069045043288"),
    "product_name": s("Shirt"),
    "product_price": n("1500"),
    "product_quantity": n("1"),
}
PRODUCT_PLAIN = {
    "product_id": 12069045043288,
    "product_name": "Shirt",
    "product_price": 1500,
    "product_quantity": 1,
}


@pytest.mark.parametrize(
    "products",
    [
        [PRODUCT_WRAPPED],
        [PRODUCT_PLAIN],
        {"t": "array", "v": [PRODUCT_WRAPPED]},
        {"t": "Array", "v": [obj(PRODUCT_WRAPPED)]},
        [obj(PRODUCT_WRAPPED, "object")],
    ],
    ids=["wrapped-leaves", "plain", "wrapped-array", "wrapped-array-of-objects", "wrapped-items"],
)
def test_product_properties_become_products(products: object) -> None:
    """productProperties, wrapped or plain, become properties["products"]."""
    raw = {
        "method": "trackClick",
        "event_name": "Added to cart",
        "properties": {"productProperties": products},
    }
    assert norm(raw).properties == {"products": [PRODUCT_PLAIN]}


@pytest.mark.parametrize("products", [None, []])
def test_products_only_when_present(products: object) -> None:
    """No productProperties means no products key; an empty list stays an empty list."""
    raw = {"method": "track", "event_name": "X", "properties": {"productProperties": products}}
    expected: dict[str, Any] = {} if products is None else {"products": []}
    assert norm(raw).properties == expected


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ("oops", "properties"),
        ([1], "properties"),
        ({"customProperties": "x"}, "properties.customProperties"),
        ({"customProperties": [1]}, "properties.customProperties"),
        ({"customProperties": {"t": "object", "v": "x"}}, "properties.customProperties"),
        ({"customProperties": {"user_traits": "ada"}}, "user_traits"),
        ({"customProperties": {"user_traits": obj(["a"])}}, "user_traits"),  # type: ignore[arg-type]
        ({"customProperties": {"external_ids": [1, 2]}}, "external_ids"),
        ({"customProperties": {"group_traits": 5}}, "group_traits"),
        ({"customProperties": {"group_external_ids": "x"}}, "group_external_ids"),
        ({"productProperties": {"product_id": 1}}, "productProperties"),
        ({"productProperties": "x"}, "productProperties"),
        ({"productProperties": [PRODUCT_PLAIN, "x"]}, "productProperties[1]"),
        ({"productProperties": [[1]]}, "productProperties[0]"),
    ],
)
def test_wrong_types_in_properties_are_invalid_fields(properties: object, field: str) -> None:
    """A wrongly typed part of properties is invalid_field naming that part."""
    error = reason_of({"method": "track", "event_name": "X", "properties": properties})
    assert error.reason == "invalid_field"
    assert field in error.detail


@pytest.mark.parametrize(
    ("fields", "custom", "expected"),
    [
        ({"customerlabs_user_id": "cl_top"}, {}, "cl_top"),
        ({"customerlabs_user_id": " cl_top "}, {}, "cl_top"),
        ({"customerlabs_user_id": 12345}, {}, "12345"),
        ({}, {"external_ids": {"customerlabs_user_id": s("cl_ext")}}, "cl_ext"),
        ({}, {"external_ids": {"customerlabs_user_id": n("777")}}, "777"),
        (
            {"customerlabs_user_id": "cl_top"},
            {"external_ids": {"customerlabs_user_id": "cl_ext"}},
            "cl_top",
        ),
        (
            {"customerlabs_user_id": ""},
            {"external_ids": {"customerlabs_user_id": "cl_ext"}},
            "cl_ext",
        ),
        ({"customerlabs_user_id": None}, {}, None),
        ({}, {}, None),
    ],
)
def test_anonymous_id_sources(
    fields: dict[str, Any], custom: dict[str, Any], expected: str | None
) -> None:
    """The anonymous id is customerlabs_user_id at the top, else inside external_ids."""
    assert norm(envelope(custom, **fields)).anonymous_id == expected


@pytest.mark.parametrize(
    ("fields", "custom", "field"),
    [
        ({"customerlabs_user_id": True}, {}, "customerlabs_user_id"),
        ({"customerlabs_user_id": 1.5}, {}, "customerlabs_user_id"),
        ({"customerlabs_user_id": {"id": 1}}, {}, "customerlabs_user_id"),
        (
            {},
            {"external_ids": {"customerlabs_user_id": ["a"]}},
            "external_ids.customerlabs_user_id",
        ),
    ],
)
def test_anonymous_id_of_wrong_type_is_invalid(
    fields: dict[str, Any], custom: dict[str, Any], field: str
) -> None:
    """An anonymous id that is not text or an integer is invalid_field."""
    error = reason_of(envelope(custom, **fields))
    assert error.reason == "invalid_field"
    assert field in error.detail


@pytest.mark.parametrize(
    ("context", "custom", "expected"),
    [
        (
            {"page_url": "https://a.test/ctx"},
            {"page_url": s("https://a.test/cp"), "url": s("https://a.test/u")},
            "https://a.test/ctx",
        ),
        (
            {},
            {"page_url": s("https://a.test/cp"), "url": s("https://a.test/u")},
            "https://a.test/cp",
        ),
        ({"page_url": ""}, {"page_url": s("https://a.test/cp")}, "https://a.test/cp"),
        (None, {"url": s("https://a.test/u")}, "https://a.test/u"),
        ({}, {"page_url": n(5), "url": "https://a.test/u"}, "https://a.test/u"),
        ({}, {"page_url": s("  ")}, None),
        ({"referrer": "https://google.test/"}, {}, None),
    ],
)
def test_url_precedence(context: object, custom: dict[str, Any], expected: str | None) -> None:
    """The URL is context.page_url, else customProperties page_url, else url."""
    raw = envelope(custom)
    if context is not None:
        raw["context"] = context
    assert norm(raw).url == expected


@pytest.mark.parametrize(
    ("context", "field"),
    [("https://a.test/", "context"), ([1], "context"), ({"page_url": 5}, "context.page_url")],
)
def test_wrong_context_is_invalid(context: object, field: str) -> None:
    """A context that is not an object, or a non-text page_url, is invalid_field."""
    error = reason_of(envelope({}, context=context))
    assert error.reason == "invalid_field"
    assert field in error.detail


@pytest.mark.parametrize(
    ("value", "expected_key", "expected_id"),
    [
        ("b6f0c7e2-1", "msg:b6f0c7e2-1", "b6f0c7e2-1"),
        ("  b6f0c7e2-1 ", "msg:b6f0c7e2-1", "b6f0c7e2-1"),
        (42, "msg:42", "42"),
    ],
)
def test_message_id_is_the_dedupe_key(value: object, expected_key: str, expected_id: str) -> None:
    """A message_id (text or an integer) is the event's de-duplication identity."""
    event = norm(envelope({}, message_id=value))
    assert (event.dedupe_key, event.message_id) == (expected_key, expected_id)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_blank_message_id_falls_back_to_a_hash(value: object) -> None:
    """A null or blank message_id leaves the content hash as the dedupe key."""
    event = norm(envelope({}, message_id=value))
    assert event.message_id is None
    assert event.dedupe_key.startswith("sha256:")


@pytest.mark.parametrize("value", [True, 1.5, ["x"], {"id": "x"}])
def test_message_id_of_wrong_type_is_invalid(value: object) -> None:
    """A message_id that is not text or an integer is invalid_field."""
    error = reason_of(envelope({}, message_id=value))
    assert error.reason == "invalid_field"
    assert "message_id" in error.detail


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-02T10:15:00Z", 1_772_446_500),
        ("2026-03-02T15:45:00.123+05:30", 1_772_446_500),
        (1_772_446_500, 1_772_446_500),
        (1_772_446_500_123, 1_772_446_500),
        ("1772446500", 1_772_446_500),
        (None, RECEIVED_AT),
    ],
)
def test_timestamp_forms(value: object, expected: int) -> None:
    """The envelope timestamp accepts ISO, seconds and milliseconds; missing is arrival."""
    raw = envelope({}) if value is None else envelope({}, timestamp=value)
    assert norm(raw).timestamp == expected


@pytest.mark.parametrize(
    "value", ["last tuesday", -1, "1990-01-01T00:00:00Z", RECEIVED_AT + 2 * 86_400, True]
)
def test_bad_timestamp_is_invalid(value: object) -> None:
    """An unreadable or absurd timestamp is invalid_timestamp."""
    error = reason_of(envelope({}, timestamp=value))
    assert error.reason == "invalid_timestamp"
    assert "timestamp" in error.detail


QUEUE_PROPS = {
    "customProperties": {"value": n("10"), "external_ids": obj({"customerlabs_user_id": s("cl_q")})}
}


@pytest.mark.parametrize(
    ("entry", "name", "kind", "properties"),
    [
        (["trackClick", "Added to cart", QUEUE_PROPS], "Added to cart", "track", {"value": 10}),
        (["identify", QUEUE_PROPS], "Create user", "identify", {"value": 10}),
        (["identify", "IdentifyUser", QUEUE_PROPS], "IdentifyUser", "identify", {"value": 10}),
        (["group", "Update group", QUEUE_PROPS], "Update group", "group", {"value": 10}),
        (["pageview", QUEUE_PROPS], "Page viewed", "page", {"value": 10}),
        (["pageview"], "Page viewed", "page", {}),
        (["pageview", None, QUEUE_PROPS], "Page viewed", "page", {"value": 10}),
        (["pageview", "Product viewed", QUEUE_PROPS], "Product viewed", "track", {"value": 10}),
        (["trackSubmit", "Form sent"], "Form sent", "track", {}),
        (["track", "Purchased", None], "Purchased", "track", {}),
    ],
)
def test_queue_tuple_forms(
    entry: list[Any], name: str, kind: str, properties: dict[str, Any]
) -> None:
    """The snippet's [method, name?, properties?] queue form reads like the envelope."""
    event = norm(entry)
    assert (event.name, event.kind, event.properties) == (name, kind, properties)
    assert event.source == "customerlabs"
    assert event.timestamp == RECEIVED_AT
    assert event.dedupe_key.startswith("sha256:")


def test_queue_tuple_takes_anonymous_id_from_external_ids() -> None:
    """A queue entry's anonymous id comes from its external_ids."""
    assert norm(["trackClick", "Added to cart", QUEUE_PROPS]).anonymous_id == "cl_q"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ([], "missing_field"),
        ([None], "missing_field"),
        ([5, "x"], "invalid_field"),
        ([{"method": "track"}], "invalid_field"),
        (["launch", "x"], "invalid_field"),
        (["trackClick", {}], "missing_field"),
        (["trackClick"], "missing_field"),
        (["trackClick", 5], "invalid_field"),
        (["trackClick", "x", "y"], "invalid_field"),
        (["trackClick", "x", {}, {}], "invalid_field"),
        (["trackClick", "x", {"customProperties": 1}], "invalid_field"),
    ],
)
def test_queue_tuple_errors(entry: list[Any], reason: str) -> None:
    """A malformed queue entry is refused with a stable reason."""
    assert reason_of(entry).reason == reason
