"""Unit tests for decoding an inbox entry's bytes into JSON."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.errors import InvalidEvent
from worker.normalize import parse_json


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"type": "track"}', {"type": "track"}),
        ('{"type": "track"}', {"type": "track"}),
        (bytearray(b"[1, 2]"), [1, 2]),
        ('"caf\u00e9"'.encode(), "caf\u00e9"),
        (b"\xef\xbb\xbf{}", {}),
        ("\ufeff{}", {}),
        (b"null", None),
        (b"12", 12),
    ],
)
def test_valid_json_is_decoded(data: bytes | str, expected: object) -> None:
    """UTF-8 JSON (bytes or text, with or without a BOM) decodes to its value."""
    assert parse_json(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b"{'a': 1}",
        b'{"a": 1} trailing',
        b"\xff\xfe{}",
        b'{"a": "\xc3"}',
        b"NaN",
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
        b"1" * 5000,
        b'{"a": "\\ud83d"}',
        b'{"\\udc00": 1}',
        b'["ok", "x\\uDFFF"]',
    ],
    ids=lambda data: repr(data)[:30],
)
def test_bad_input_is_invalid_json(data: bytes) -> None:
    """Bad UTF-8, bad JSON, NaN, huge integers and absurd nesting are invalid_json."""
    with pytest.raises(InvalidEvent) as caught:
        parse_json(data)
    assert caught.value.reason == "invalid_json"
    assert caught.value.detail


def test_escaped_surrogate_pairs_are_text() -> None:
    """A whole \\uD83D\\uDE00 pair is one character; only a lone half is refused."""
    assert parse_json(b'{"e": "\\ud83d\\ude00"}') == {"e": "\U0001f600"}


def test_non_text_input_is_invalid_json() -> None:
    """Something that is neither bytes nor text is refused the same way."""
    with pytest.raises(InvalidEvent) as caught:
        parse_json(123)  # type: ignore[arg-type]
    assert caught.value.reason == "invalid_json"


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_else(data: bytes) -> None:
    """Any bytes decode or raise InvalidEvent, never another exception."""
    try:
        parse_json(data)
    except InvalidEvent as exc:
        assert exc.reason == "invalid_json"


@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_else(data: str) -> None:
    """Any text decodes or raises InvalidEvent, never another exception."""
    try:
        parse_json(data)
    except InvalidEvent as exc:
        assert exc.reason == "invalid_json"
