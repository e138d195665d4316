"""Property tests: normalize over arbitrary input only returns an Event or raises InvalidEvent."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.errors import InvalidEvent
from worker.events import KINDS, Event
from worker.normalize import normalize

RECEIVED_AT = 1_772_496_000
REASONS = {
    "not_an_object",
    "unknown_shape",
    "missing_field",
    "invalid_field",
    "invalid_timestamp",
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["", " ", "true", "100", "1e3", "007", "2026-03-02T10:15:00Z", "1772446500000"]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
type_names = st.sampled_from(["string", "number", "boolean", "array", "object", "Object", "x"])
wrapped = st.recursive(
    scalars,
    lambda children: (
        st.fixed_dictionaries(
            {"t": type_names, "v": children},
            optional={"ib": st.booleans() | st.just("true"), "igb": st.booleans()},
        )
        | st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=20,
)
custom_keys = st.sampled_from(
    [
        "user_traits",
        "external_ids",
        "group_traits",
        "group_external_ids",
        "identify_by_email",
        "page_url",
        "url",
        "value",
        "customerlabs_user_id",
    ]
) | st.text(max_size=6)
customerlabs = st.fixed_dictionaries(
    {
        "method": st.sampled_from(
            ["pageview", "trackClick", "trackSubmit", "track", "identify", "group", "PAGEVIEW"]
        )
        | json_values
    },
    optional={
        "event_name": st.text(max_size=10) | json_values,
        "message_id": json_values,
        "timestamp": json_values,
        "customerlabs_user_id": json_values,
        "context": st.fixed_dictionaries({}, optional={"page_url": json_values}) | json_values,
        "properties": st.fixed_dictionaries(
            {},
            optional={
                "customProperties": st.dictionaries(custom_keys, wrapped, max_size=5) | wrapped,
                "productProperties": st.lists(wrapped, max_size=3) | wrapped,
            },
        )
        | json_values,
    },
)
segment = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["identify", "track", "page", "screen", "group", "Track"])
        | json_values
    },
    optional={
        "event": st.text(max_size=10) | json_values,
        "name": json_values,
        "userId": json_values,
        "anonymousId": json_values,
        "messageId": json_values,
        "groupId": json_values,
        "traits": json_values,
        "properties": json_values,
        "timestamp": json_values,
        "originalTimestamp": json_values,
        "sentAt": json_values,
        "context": st.fixed_dictionaries(
            {},
            optional={
                "traits": json_values,
                "page": st.fixed_dictionaries({}, optional={"url": json_values}) | json_values,
                "library": json_values,
            },
        )
        | json_values,
    },
)
queue = st.tuples(
    st.sampled_from(["pageview", "trackClick", "identify", "group"]) | json_values,
    st.lists(
        st.text(max_size=8)
        | st.none()
        | st.fixed_dictionaries(
            {}, optional={"customProperties": st.dictionaries(custom_keys, wrapped, max_size=4)}
        )
        | json_values,
        max_size=3,
    ),
).map(lambda parts: [parts[0], *parts[1]])


def check(raw: Any) -> None:
    """Assert that normalising ``raw`` yields a valid Event or a known InvalidEvent."""
    try:
        event = normalize(raw, received_at=RECEIVED_AT)
    except InvalidEvent as exc:
        assert exc.reason in REASONS
        assert exc.detail
        return
    assert isinstance(event, Event)
    assert event.kind in KINDS
    assert isinstance(event.name, str) and event.name
    assert isinstance(event.timestamp, int)
    assert event.dedupe_key.startswith(("msg:", "sha256:"))
    for value in (event.url, event.user_id, event.anonymous_id, event.message_id):
        assert value is None or (isinstance(value, str) and value == value.strip() and value)


FUZZ = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(json_values)
def test_any_json_value(raw: Any) -> None:
    """Arbitrary JSON values never escape as anything but InvalidEvent."""
    check(raw)


@FUZZ
@given(customerlabs)
def test_customerlabs_like_objects(raw: Any) -> None:
    """CustomerLabs-like envelopes with arbitrary parts never escape as anything else."""
    check(raw)


@FUZZ
@given(segment)
def test_segment_like_objects(raw: Any) -> None:
    """Segment-like calls with arbitrary parts never escape as anything else."""
    check(raw)


@FUZZ
@given(queue)
def test_queue_like_arrays(raw: Any) -> None:
    """Queue-like arrays with arbitrary parts never escape as anything else."""
    check(raw)
