"""Event timestamps in any accepted form, turned into integer Unix seconds."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from worker.errors import InvalidEvent

MIN_TIMESTAMP_S = 946_684_800  # 2000-01-01T00:00:00Z: anything earlier is a bug upstream.
MAX_FUTURE_S = 86_400  # clocks drift; a day ahead of arrival is the most we believe.
MS_THRESHOLD = 10**11  # as seconds that is the year 5138, so larger values are milliseconds.

_NUMERIC = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_timestamp(value: object, *, received_at: int, field: str = "timestamp") -> int:
    """Return ``value`` as Unix seconds; missing, null or blank means ``received_at``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return received_at
    seconds = _to_seconds(value, field)
    if seconds < MIN_TIMESTAMP_S:
        raise InvalidEvent("invalid_timestamp", f"{field} {_show(value)} is before 2000.")
    if seconds > received_at + MAX_FUTURE_S:
        raise InvalidEvent(
            "invalid_timestamp", f"{field} {_show(value)} is more than a day in the future."
        )
    return seconds


def _to_seconds(value: object, field: str) -> int:
    """Read ISO-8601 text, or Unix seconds/milliseconds as a number or numeric text."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidEvent(
            "invalid_timestamp", f"{field} must be ISO-8601 text or a Unix time number."
        )
    if isinstance(value, str):
        text = value.strip()
        if _NUMERIC.fullmatch(text):
            return _from_number(_parse_number(text, field), value, field)
        return _from_iso(text, value, field)
    return _from_number(value, value, field)


def _parse_number(text: str, field: str) -> int | float:
    """Parse numeric text as an int when integral, else a float."""
    try:
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    except ValueError:  # more digits than int() converts
        raise InvalidEvent("invalid_timestamp", f"{field} has far too many digits.") from None


def _from_number(number: int | float, original: object, field: str) -> int:
    """Turn Unix seconds or milliseconds into whole seconds."""
    if isinstance(number, float) and not math.isfinite(number):
        raise InvalidEvent(
            "invalid_timestamp", f"{field} {_show(original)} is not a finite number."
        )
    if number > MS_THRESHOLD:
        number = number // 1000
    return math.floor(number)


def _from_iso(text: str, original: object, field: str) -> int:
    """Parse ISO-8601 text; a time without an offset is UTC."""
    try:
        parsed = datetime.fromisoformat(text.upper())  # ISO letters (T, Z, W) in any case
    except ValueError:
        raise InvalidEvent(
            "invalid_timestamp",
            f"{field} {_show(original)} is not ISO-8601 text or a Unix time.",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return math.floor(parsed.timestamp())
    except (OverflowError, ValueError):
        raise InvalidEvent(
            "invalid_timestamp", f"{field} {_show(original)} is out of range."
        ) from None


def _show(value: object) -> str:
    """Quote a bad value briefly for an error message."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than repr() converts
        return "(a very long number)"
    return text if len(text) <= 40 else text[:37] + "..."
