"""Tests for an inbox entry's arrival time, which bounds the events' own timestamps."""

from __future__ import annotations

import pytest

from worker.inbox import Entry

ADDED_MS = 1_700_000_000_123
ADDED_S = ADDED_MS // 1000


def _entry(stamp: bytes | None) -> Entry:
    fields = {b"event": b"{}"}
    if stamp is not None:
        fields[b"received_at"] = stamp
    return Entry(f"{ADDED_MS}-0", fields)


def test_without_a_stamp_the_id_time_is_used() -> None:
    """A plain XADD arrived when its id says."""
    assert _entry(None).received_at == ADDED_S


def test_a_replay_keeps_its_original_arrival() -> None:
    """A replayed entry carries the time it first arrived, earlier than its new id."""
    assert _entry(b"1699990000.5").received_at == 1_699_990_000


@pytest.mark.parametrize(
    "stamp",
    [b"inf", b"-inf", b"nan", b"1e400", b"not a time", b"", b"12", b"1800000000"],
    ids=["inf", "-inf", "nan", "overflow", "text", "empty", "before-2000", "after-its-id"],
)
def test_an_implausible_stamp_falls_back_to_the_id_time(stamp: bytes) -> None:
    """Producers may write anything: only a finite time from 2000 up to the id is believed."""
    assert _entry(stamp).received_at == ADDED_S
