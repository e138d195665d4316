"""CustomerLabs ``{"t": type, "v": value}`` unwrapping and the coercions it implies."""

from __future__ import annotations

import math
import re
from typing import Any, TypeGuard

import structlog

from worker.errors import InvalidEvent

log = structlog.get_logger(__name__)

# Real properties nest a handful of levels; anything deeper is garbage or an attack, and
# refusing it here keeps every later stage (mapping, hashing, JSON encoding) off the
# interpreter's recursion limit.
MAX_DEPTH = 64

WRAPPER_KEYS = frozenset({"t", "v", "ib", "igb"})

# Integral text without a leading zero: "007" or a phone number "0987…" stays a string,
# because turning it into a number would lose digits.
_INT_TEXT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?")
_LEADING_ZERO = re.compile(r"[+-]?0[0-9]")


def is_wrapper(value: object) -> TypeGuard[dict[str, Any]]:
    """Tell whether ``value`` is a ``{"t", "v"}`` wrapper (optionally with ``ib``/``igb``)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("t"), str)
        and "v" in value
        and value.keys() <= WRAPPER_KEYS
    )


def is_flag_set(value: object) -> bool:
    """Tell whether a marker flag (``ib``/``igb``) is on: ``true`` or the string ``"true"``."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def unwrap(value: Any, *, field: str = "properties", depth: int = 0) -> Any:
    """Return ``value`` with every ``{"t", "v"}`` wrapper replaced by its (coerced) value."""
    if depth > MAX_DEPTH:
        raise InvalidEvent("invalid_field", f"{field} nests more than {MAX_DEPTH} levels deep.")
    if isinstance(value, dict):
        # is_wrapper, inlined: this runs for every value of every CustomerLabs event.
        kind = value.get("t")
        if isinstance(kind, str) and "v" in value and value.keys() <= WRAPPER_KEYS:
            return _unwrap_typed(kind.strip().lower(), value["v"], field, depth + 1)
        return {key: unwrap(item, field=field, depth=depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item, field=field, depth=depth + 1) for item in value]
    return value


def _unwrap_typed(kind: str, value: Any, field: str, depth: int) -> Any:
    """Unwrap one wrapper's ``v`` according to its lower-cased ``t``."""
    if type(value) is str and kind != "number" and kind != "boolean" and depth <= MAX_DEPTH:
        return value  # the common case, as unwrap() would return it
    if kind == "number" and isinstance(value, str):
        return to_number(value)
    if kind == "boolean" and isinstance(value, str):
        return _to_bool(value)
    if kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return _number_text(value)
    return unwrap(value, field=field, depth=depth)


def to_number(text: str) -> int | float | str:
    """Parse numeric text: int when integral, else float; the text itself when it is neither."""
    stripped = text.strip()
    if _INT_TEXT.fullmatch(stripped):
        try:
            return int(stripped)
        except ValueError:  # more digits than int() converts
            return text
    if _FLOAT_TEXT.fullmatch(stripped) and not _LEADING_ZERO.match(stripped):
        number = float(stripped)
        if math.isfinite(number):
            return number
    if not _LEADING_ZERO.match(stripped):
        log.info("normalize.number_kept_as_text", value=text[:64])
    return text


def _to_bool(text: str) -> bool | str:
    """Read ``"true"``/``"false"`` (any case) as a bool; keep any other text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


def _number_text(value: int | float) -> str | int | float:
    """Write a number declared as a string the way JavaScript would."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    try:
        return str(value)
    except ValueError:  # more digits than str() converts
        return value


def coerce_id(value: object, field: str) -> str | None:
    """Read an identifier: stripped text, an int as text, blank or null as None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # more digits than str() converts
            pass
    raise InvalidEvent(
        "invalid_field", f"{field} must be a string or an integer, not {describe(value)}."
    )


def describe(value: object) -> str:
    """Name a value's JSON type for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def plain_copy(value: Any, *, field: str, depth: int = 0) -> Any:
    """Deep-copy plain JSON data, refusing nesting deeper than ``MAX_DEPTH``."""
    if depth > MAX_DEPTH:
        raise InvalidEvent("invalid_field", f"{field} nests more than {MAX_DEPTH} levels deep.")
    if isinstance(value, dict):
        return {key: plain_copy(item, field=field, depth=depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_copy(item, field=field, depth=depth + 1) for item in value]
    return value
