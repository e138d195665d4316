"""Unit tests for {t, v} unwrapping and value coercion."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from worker.errors import InvalidEvent
from worker.normalize.values import (
    MAX_DEPTH,
    coerce_id,
    is_flag_set,
    is_wrapper,
    plain_copy,
    to_number,
    unwrap,
)


@pytest.mark.parametrize(
    "value",
    [
        {"t": "string", "v": "x"},
        {"t": "Object", "v": {}},
        {"t": "string", "v": "a@b.c", "ib": True},
        {"t": "string", "v": "acme", "igb": True},
        {"t": "number", "v": None},
    ],
)
def test_is_wrapper_accepts_t_v_with_only_marker_keys(value: object) -> None:
    """A dict with a string t, a v, and nothing beyond ib/igb is a wrapper."""
    assert is_wrapper(value)


@pytest.mark.parametrize(
    "value",
    [
        {"t": "string"},
        {"v": "x"},
        {"t": 1, "v": "x"},
        {"t": "string", "v": "x", "extra": 1},
        ["t", "v"],
        "t",
        None,
    ],
)
def test_is_wrapper_refuses_anything_else(value: object) -> None:
    """A missing t or v, a non-string t, or an extra key means a plain value."""
    assert not is_wrapper(value)


@pytest.mark.parametrize(
    ("wrapped", "expected"),
    [
        ({"t": "string", "v": "Ada"}, "Ada"),
        ({"t": "STRING", "v": "Ada"}, "Ada"),
        ({"t": "number", "v": 100}, 100),
        ({"t": "number", "v": "100"}, 100),
        ({"t": "number", "v": " 100 "}, 100),
        ({"t": "number", "v": "-7"}, -7),
        ({"t": "number", "v": "2500.50"}, 2500.5),
        ({"t": "number", "v": "1e3"}, 1000.0),
        ({"t": "number", "v": "12069045043288"}, 12069045043288),
        ({"t": "Number", "v": "1.5"}, 1.5),
        ({"t": "boolean", "v": True}, True),
        ({"t": "boolean", "v": "true"}, True),
        ({"t": "boolean", "v": "FALSE"}, False),
        ({"t": "Boolean", "v": " True "}, True),
        ({"t": "string", "v": 12069045043288}, "12069045043288"),
        ({"t": "string", "v": 2.0}, "2"),
        ({"t": "string", "v": 2.5}, "2.5"),
        ({"t": "string", "v": None}, None),
        ({"t": "array", "v": [{"t": "number", "v": "1"}, "b"]}, [1, "b"]),
        ({"t": "object", "v": {"a": {"t": "string", "v": "x"}}}, {"a": "x"}),
        ({"t": "Object", "v": {"a": {"t": "string", "v": "x"}}}, {"a": "x"}),
        (
            {"t": "OBJECT", "v": {"a": {"t": "Object", "v": {"b": {"t": "number", "v": "2"}}}}},
            {"a": {"b": 2}},
        ),
        ({"t": "mystery", "v": {"a": {"t": "number", "v": "3"}}}, {"a": 3}),
        ({"t": "string", "v": "a@b.c", "ib": True}, "a@b.c"),
    ],
)
def test_unwrap_reads_each_wrapper_type(wrapped: object, expected: object) -> None:
    """Each wrapper type unwraps (recursively, t case-insensitive) to its coerced value."""
    assert unwrap(wrapped) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        (42, 42),
        (None, None),
        (True, True),
        ({"a": 1, "b": {"t": "number", "v": "2"}}, {"a": 1, "b": 2}),
        ([1, {"t": "string", "v": "x"}], [1, "x"]),
        ({"t": "string", "v": "x", "other": 1}, {"t": "string", "v": "x", "other": 1}),
    ],
)
def test_unwrap_accepts_bare_values(value: object, expected: object) -> None:
    """Bare values pass through, with wrappers inside them unwrapped."""
    assert unwrap(value) == expected


@pytest.mark.parametrize(
    "text", ["abc", "1,500", "$10", "nan", "inf", "1e999", "0x10", "1_000", "", "1.2.3"]
)
def test_number_text_that_does_not_parse_is_kept(text: str) -> None:
    """A number sent as text that is not a finite decimal number stays text."""
    assert to_number(text) == text


@pytest.mark.parametrize("text", ["007", "0987654321", "-01", "00.5"])
def test_number_text_with_a_leading_zero_is_kept(text: str) -> None:
    """Leading zeros (postcodes, phone numbers) would be lost as numbers, so stay text."""
    assert to_number(text) == text


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("0.5", 0.5), ("-0", 0), ("+5", 5)])
def test_number_text_zero_forms_parse(text: str, expected: float) -> None:
    """A lone zero or a zero before the decimal point is still a number."""
    result = to_number(text)
    assert result == expected
    assert type(result) is type(expected)


def test_number_text_kept_is_logged() -> None:
    """Keeping unparseable number text leaves a log line saying so."""
    with capture_logs() as logs:
        to_number("1,500")
    assert logs == [
        {"event": "normalize.number_kept_as_text", "value": "1,500", "log_level": "info"}
    ]


def test_number_with_too_many_digits_is_kept() -> None:
    """Integral text longer than Python converts stays text instead of raising."""
    text = "9" * 5000
    assert to_number(text) == text


def test_unwrap_refuses_nesting_beyond_the_limit() -> None:
    """Nesting deeper than MAX_DEPTH is an invalid field, not a RecursionError."""
    value: object = "x"
    for _ in range(MAX_DEPTH + 2):
        value = {"a": value}
    with pytest.raises(InvalidEvent) as caught:
        unwrap(value, field="properties.customProperties.deep")
    assert caught.value.reason == "invalid_field"
    assert "properties.customProperties.deep" in caught.value.detail


def test_plain_copy_refuses_nesting_beyond_the_limit() -> None:
    """Copying plain data is bounded the same way."""
    value: object = 1
    for _ in range(MAX_DEPTH + 2):
        value = [value]
    with pytest.raises(InvalidEvent) as caught:
        plain_copy(value, field="properties")
    assert caught.value.reason == "invalid_field"


def test_plain_copy_is_deep() -> None:
    """The copy shares no containers with the original."""
    original = {"a": {"b": [1]}}
    copy = plain_copy(original, field="properties")
    copy["a"]["b"].append(2)
    assert original == {"a": {"b": [1]}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("  abc  ", "abc"),
        ("", None),
        ("   ", None),
        (None, None),
        (1001, "1001"),
        (0, "0"),
    ],
)
def test_coerce_id_reads_text_and_integers(value: object, expected: str | None) -> None:
    """Identifiers are stripped text or integers as text; blank or null is None."""
    assert coerce_id(value, "userId") == expected


@pytest.mark.parametrize(
    "value", [True, False, 1.5, 10.0, [], {}, ["a"], 10**5000], ids=lambda v: type(v).__name__
)
def test_coerce_id_refuses_other_types(value: object) -> None:
    """Booleans, floats, arrays, objects and unprintable ints are invalid identifiers."""
    with pytest.raises(InvalidEvent) as caught:
        coerce_id(value, "anonymousId")
    assert caught.value.reason == "invalid_field"
    assert "anonymousId" in caught.value.detail


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("true", True), (" TRUE ", True), (False, False), ("yes", False), (1, False)],
)
def test_marker_flag(value: object, expected: bool) -> None:
    """A marker flag is on for true or the text "true" only."""
    assert is_flag_set(value) is expected
