"""event_ulid spells the same text python-ulid would, for every key."""

from __future__ import annotations

import hashlib
import random

from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from worker.ids import event_ulid


def reference(key: str) -> str:
    return str(ULID.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:16]))


def test_same_text_as_python_ulid_over_many_keys() -> None:
    rng = random.Random(11)
    keys = [f"msg-{i}" for i in range(20_000)]
    keys += [rng.randbytes(rng.randrange(0, 40)).hex() for _ in range(20_000)]
    keys += ["", "é", "日本語", "\x00", "a" * 10_000]
    for key in keys:
        assert event_ulid(key) == reference(key), key


def test_extreme_digests_spell_like_python_ulid() -> None:
    # keys whose digests start with all-zero and all-one bits cover both ends of the range
    found = {"low": None, "high": None}
    for i in range(200_000):
        first = hashlib.sha256(f"e{i}".encode()).digest()[0]
        if first == 0 and found["low"] is None:
            found["low"] = f"e{i}"
        if first == 255 and found["high"] is None:
            found["high"] = f"e{i}"
        if None not in found.values():
            break
    for key in found.values():
        assert key is not None
        assert event_ulid(key) == reference(key)
    assert event_ulid(found["high"])[0] == "7"  # type: ignore[arg-type]
    assert event_ulid(found["low"])[0] == "0"  # type: ignore[arg-type]


@given(st.text())
def test_any_text_matches_python_ulid(key: str) -> None:
    try:
        expected = reference(key)
    except UnicodeEncodeError:  # lone surrogates: both refuse
        try:
            event_ulid(key)
        except UnicodeEncodeError:
            return
        raise AssertionError("event_ulid accepted text python-ulid's path refuses") from None
    assert event_ulid(key) == expected
    assert len(expected) == 26
