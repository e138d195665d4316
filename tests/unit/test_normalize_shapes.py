"""Unit tests for shape detection and the de-duplication key."""

from __future__ import annotations

import hashlib
import json

import pytest

from worker.errors import InvalidEvent
from worker.normalize import normalize

RECEIVED_AT = 1_772_496_000


def reason_of(raw: object) -> InvalidEvent:
    """Normalise ``raw`` and return the InvalidEvent it raises."""
    with pytest.raises(InvalidEvent) as caught:
        normalize(raw, received_at=RECEIVED_AT)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "source"),
    [
        ({"method": "pageview"}, "customerlabs"),
        ({"type": "page"}, "segment"),
        ({"method": "pageview", "type": "page"}, "customerlabs"),
        (["pageview"], "customerlabs"),
    ],
)
def test_shape_is_detected(raw: object, source: str) -> None:
    """method means CustomerLabs (winning over type), type means Segment, a list a queue entry."""
    assert normalize(raw, received_at=RECEIVED_AT).source == source


@pytest.mark.parametrize("raw", ["track", 5, 1.5, True, None])
def test_scalars_are_not_an_object(raw: object) -> None:
    """A JSON value that is neither an object nor an array is not_an_object."""
    error = reason_of(raw)
    assert error.reason == "not_an_object"
    assert error.detail


@pytest.mark.parametrize("raw", [{}, {"event": "Added to cart"}, {"Type": "track"}])
def test_objects_of_neither_shape_are_unknown(raw: object) -> None:
    """An object without method or type is unknown_shape."""
    error = reason_of(raw)
    assert error.reason == "unknown_shape"
    assert "method" in error.detail and "type" in error.detail


def test_content_hash_is_sha256_of_canonical_json() -> None:
    """Without a message id the key hashes the sorted, compact, unescaped JSON of the event."""
    raw = {
        "type": "track",
        "userId": "u_1",
        "event": "Café visited",
        "properties": {"b": 1, "a": [2]},
    }
    canonical = (
        '{"event":"Café visited","properties":{"a":[2],"b":1},"type":"track","userId":"u_1"}'
    )
    expected = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert normalize(raw, received_at=RECEIVED_AT).dedupe_key == expected


def test_content_hash_ignores_key_order() -> None:
    """The same event with its keys in another order has the same key."""
    one = json.loads('{"type": "track", "event": "X", "properties": {"a": 1, "b": 2}}')
    two = json.loads('{"properties": {"b": 2, "a": 1}, "event": "X", "type": "track"}')
    first = normalize(one, received_at=RECEIVED_AT).dedupe_key
    assert normalize(two, received_at=RECEIVED_AT).dedupe_key == first


def test_content_hash_changes_with_content() -> None:
    """Events that differ in any field have different keys."""
    one = {"type": "track", "event": "X", "properties": {"a": 1}}
    two = {"type": "track", "event": "X", "properties": {"a": 2}}
    first = normalize(one, received_at=RECEIVED_AT).dedupe_key
    assert normalize(two, received_at=RECEIVED_AT).dedupe_key != first


def test_content_hash_does_not_depend_on_arrival_time() -> None:
    """A redelivered event without a timestamp keeps its key although it arrives later."""
    raw = {"type": "track", "event": "X"}
    first = normalize(raw, received_at=RECEIVED_AT).dedupe_key
    assert normalize(raw, received_at=RECEIVED_AT + 60).dedupe_key == first


def test_content_hash_survives_a_lone_surrogate() -> None:
    """Text holding an unpaired surrogate (valid JSON escape) still hashes."""
    raw = json.loads('{"type": "track", "event": "X", "properties": {"s": "\\ud800"}}')
    assert normalize(raw, received_at=RECEIVED_AT).dedupe_key.startswith("sha256:")


def test_queue_entry_hash_covers_the_entry() -> None:
    """A queue entry's key is the hash of the entry itself."""
    entry = ["trackClick", "Added to cart", {}]
    canonical = '["trackClick","Added to cart",{}]'
    expected = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert normalize(entry, received_at=RECEIVED_AT).dedupe_key == expected


def test_deep_nesting_in_an_ignored_field_is_invalid_not_a_crash() -> None:
    """Absurd nesting anywhere, even in fields not read, is an InvalidEvent."""
    deep: object = "x"
    for _ in range(50_000):
        deep = [deep]
    raw = {"type": "track", "event": "X", "context": {"library": deep}}
    assert reason_of(raw).reason == "invalid_field"


def test_event_is_immutable() -> None:
    """The normalised event cannot be reassigned field by field."""
    event = normalize({"type": "page"}, received_at=RECEIVED_AT)
    with pytest.raises(AttributeError):
        event.name = "x"  # type: ignore[misc]
