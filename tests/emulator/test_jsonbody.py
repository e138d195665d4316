"""Parsing a batch body once while measuring each operation as sent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from worker.emulator.jsonbody import loads_with_item_sizes
from worker.emulator.validation import check_ulid

OPS: list[Any] = [{"name": "é" * 3, "n": [1, 2.5, None]}, "x", 7, {"nested": {"a": True}}]


@pytest.mark.parametrize(
    "dumps",
    [
        lambda v: json.dumps(v),
        lambda v: json.dumps(v, ensure_ascii=False),
        lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False),
    ],
    ids=["escaped", "utf8", "compact"],
)
def test_item_sizes_are_bytes_as_sent(dumps: Any) -> None:
    """Each item's size is the UTF-8 length of its own text in the body."""
    raw = dumps({"other": [1], "batch": OPS}).encode()
    body, sizes = loads_with_item_sizes(raw, "batch")
    assert body == json.loads(raw)
    assert sizes == [len(dumps(op).encode()) for op in OPS]


def test_whitespace_between_items_is_not_counted() -> None:
    """Indentation and newlines around items are not part of their size."""
    raw = '{\n  "batch": [\n    {"a": "é"},\n    2\n  ]\n}'.encode()
    assert loads_with_item_sizes(raw, "batch")[1] == [len('{"a": "é"}'.encode()), 1]


@pytest.mark.parametrize(
    ("raw", "sizes"),
    [
        (b"{}", None),
        (b'{"batch": []}', []),
        (b'{"batch": {"a": 1}}', None),
        (b'{"batch": [1], "batch": "x"}', None),
        (b' { "batch" : [ 1 , {"b":2} ] } ', [1, 7]),
        (b"[1, 2]", None),
    ],
)
def test_sizes_only_for_a_list_under_the_key(raw: bytes, sizes: list[int] | None) -> None:
    """Sizes come back only when the key holds a list (the last one, as json.loads reads it)."""
    body, got = loads_with_item_sizes(raw, "batch")
    assert (body, got) == (json.loads(raw), sizes)


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"batch":[1,]}', b'{"batch":[1] x}', b'{"a":1,}', b'{"a":1} 2', b"{1: 2}", b"\xff"],
)
def test_malformed_json_raises_value_error(raw: bytes) -> None:
    """Whatever json.loads refuses is refused too."""
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        loads_with_item_sizes(raw, "batch")


@given(
    st.text(
        alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\u212a-",
        min_size=24,
        max_size=27,
    )
)
def test_ulid_check_agrees_with_python_ulid(value: str) -> None:
    """The ULID check accepts exactly what python-ulid parses."""
    try:
        ULID.from_str(value)
        parses = True
    except ValueError:
        parses = False
    assert (check_ulid("id", value) is None) is parses
