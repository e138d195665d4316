"""Pure checks of Track API bodies: shapes, sizes, timestamps and ULIDs."""

from __future__ import annotations

from typing import Any

import pytest

from worker.emulator.validation import (
    check_attributes,
    check_timestamp,
    check_ulid,
    identifier_kind,
    json_size,
    validate_operation,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", ("id", "42")),
        ("ada@example.com", ("email", "ada@example.com")),
        ("cio_a3000001", ("cio_id", "a3000001")),
        ("not@email", ("id", "not@email")),
        ("+14155552671", ("id", "+14155552671")),
    ],
)
def test_identifier_kind_by_shape(value: str, expected: tuple[str, str]) -> None:
    """Email-shaped values are emails, ``cio_`` values cio_ids, anything else an id."""
    assert identifier_kind(value) == expected


@pytest.mark.parametrize(
    ("value", "size"),
    [("é", 2), ("abc", 3), (12345, 5), (True, 4), (None, 4), ({"a": [1, 2]}, 11), (["é"], 6)],
)
def test_json_size_counts_utf8_bytes(value: Any, size: int) -> None:
    """Strings count UTF-8 bytes; other values their compact JSON."""
    assert json_size(value) == size


@pytest.mark.parametrize("value", [0, 1_700_000_000, 10**11])
def test_integer_seconds_are_valid_timestamps(value: int) -> None:
    """Integer Unix seconds up to 10^11 pass."""
    assert check_timestamp("timestamp", value) is None


@pytest.mark.parametrize("value", [10**11 + 1, -1, 1.0, "1700000000", True, None])
def test_other_timestamps_are_refused(value: Any) -> None:
    """Milliseconds, negatives, floats, strings, booleans and null are refused."""
    problem = check_timestamp("timestamp", value)
    assert problem is not None and problem.reason == "invalid_timestamp"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", True),
        ("01arz3ndektsv4rrffq69g5fav", True),
        ("01ARZ3NDEKTSV4RRFFQ69G5FA", False),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAU", False),
        ("81ARZ3NDEKTSV4RRFFQ69G5FAV", False),
        (12345, False),
    ],
)
def test_ulid_check(value: Any, valid: bool) -> None:
    """Only 26 Crockford base32 characters that fit 128 bits are ULIDs."""
    assert (check_ulid("id", value) is None) is valid


def test_identifiers_are_not_counted_as_attributes() -> None:
    """300 attributes plus ``email`` and ``id`` are within the limit."""
    attributes = {f"a{i}": i for i in range(300)} | {"email": "a@b.co", "id": "1"}
    assert check_attributes("", attributes) == []


def test_attribute_value_limit_is_inclusive() -> None:
    """A value of exactly 1000 bytes passes and 1001 does not."""
    assert check_attributes("", {"v": "x" * 1000}) == []
    assert [p.reason for p in check_attributes("", {"v": "x" * 1001})] == ["too_long"]


def test_operation_size_is_the_size_given() -> None:
    """The 32 KB limit applies to the operation's size as sent, when it is given."""
    op = {"type": "person", "identifiers": {"id": "1"}, "action": "event", "name": "a"}
    op["attributes"] = {"pad": "p" * 33_000}
    assert validate_operation(op) == []
    assert [p.reason for p in validate_operation(op, size_bytes=32 * 1024 + 1)] == ["too_large"]


def test_merge_needs_primary_and_secondary() -> None:
    """A merge operation names both people."""
    op = {"type": "person", "action": "merge", "primary": {"id": "1"}}
    assert [p.field for p in validate_operation(op)] == ["secondary"]
