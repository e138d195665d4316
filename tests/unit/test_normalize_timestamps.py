"""Unit tests for reading event timestamps into integer Unix seconds."""

from __future__ import annotations

import pytest

from worker.errors import InvalidEvent
from worker.normalize.timestamps import parse_timestamp

RECEIVED_AT = 1_772_496_000  # 2026-03-03T00:00:00Z
T = 1_772_446_500  # 2026-03-02T10:15:00Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-02T10:15:00Z", T),
        ("2026-03-02T10:15:00z", T),
        ("2026-03-02T10:15:00+00:00", T),
        ("2026-03-02T10:15:00.123Z", T),
        ("2026-03-02T10:15:00.999999Z", T),
        ("2026-03-02T10:15:00.123456789Z", T),
        ("2026-03-02T15:45:00.123+05:30", T),
        ("2026-03-02T05:15:00-05:00", T),
        ("2026-03-02T10:15:00", T),
        ("2026-03-02 10:15:00", T),
        ("  2026-03-02T10:15:00Z  ", T),
        ("2026-03-02", T - (10 * 3600 + 15 * 60)),
    ],
)
def test_iso_8601_forms(value: str, expected: int) -> None:
    """ISO-8601 with Z, offsets and fractions reads as whole seconds; naive means UTC."""
    assert parse_timestamp(value, received_at=RECEIVED_AT) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T, T),
        (T + 0.9, T),
        (str(T), T),
        (f"{T}.75", T),
        (T * 1000, T),
        (T * 1000 + 999, T),
        (str(T * 1000 + 123), T),
        (float(T * 1000), T),
    ],
)
def test_unix_seconds_and_milliseconds(value: object, expected: int) -> None:
    """Unix seconds and milliseconds, as numbers or numeric text, read as whole seconds."""
    assert parse_timestamp(value, received_at=RECEIVED_AT) == expected


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_means_received_at(value: object) -> None:
    """A null or blank timestamp is the time the event entered the inbox."""
    assert parse_timestamp(value, received_at=RECEIVED_AT) == RECEIVED_AT


def test_future_within_a_day_is_accepted() -> None:
    """A sender clock up to a day ahead of arrival is believed."""
    ahead = RECEIVED_AT + 86_400
    assert parse_timestamp(ahead, received_at=RECEIVED_AT) == ahead


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-03-02T25:00:00Z",
        "03/02/2026",
        "Mon, 02 Mar 2026 10:15:00 GMT",
        "1e999",
        "9" * 5000,
        True,
        False,
        [T],
        {"t": "number", "v": T},
        -1,
        0,
        "-5",
        946_684_799,
        "1999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+05:00",
        RECEIVED_AT + 86_401,
        (RECEIVED_AT + 86_401) * 1000,
        10**5000,
        float("inf"),
        float("nan"),
    ],
    ids=lambda value: type(value).__name__,
)
def test_unreadable_or_absurd_is_invalid(value: object) -> None:
    """Unparseable, negative, pre-2000 or more-than-a-day-ahead times are refused."""
    with pytest.raises(InvalidEvent) as caught:
        parse_timestamp(value, received_at=RECEIVED_AT, field="sentAt")
    assert caught.value.reason == "invalid_timestamp"
    assert caught.value.detail.startswith("sentAt")
