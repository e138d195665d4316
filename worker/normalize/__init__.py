"""Parse and normalise one inbox entry, of either input shape, into an ``Event``."""

from __future__ import annotations

import json
import re

import orjson

from worker.errors import InvalidEvent
from worker.events import Event
from worker.normalize.customerlabs import from_envelope, from_queue
from worker.normalize.segment import from_segment
from worker.normalize.values import describe

__all__ = ["DEFAULT_PAGE_VIEW_EVENT", "normalize", "parse_json"]

DEFAULT_PAGE_VIEW_EVENT = "Page viewed"

# orjson reads integers past 64 bits as floats, losing digits; any run of 19+ digits
# takes the standard parser instead, which keeps them exact. (A byte translation and a
# substring search cost a tenth of the equivalent regular expression.)
_DIGITS_ONLY = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 19


def parse_json(data: bytes | str) -> object:
    """Decode UTF-8 JSON; any failure is ``InvalidEvent("invalid_json", …)``.

    orjson parses the common case four times faster than ``json``; whatever it refuses
    (a BOM, lone surrogates, huge numbers, deep nesting, bad input) goes through ``json``,
    so results and error messages are those of the standard parser.
    """
    if isinstance(data, bytes) and _LONG_RUN not in data.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidEvent(
                "invalid_json", f"The event is not valid UTF-8 (bad byte at offset {exc.start})."
            ) from None
    elif isinstance(data, str):
        text = data.removeprefix("\ufeff")
    else:
        raise InvalidEvent(
            "invalid_json", f"The event must be bytes or text, not {describe(data)}."
        )
    try:
        value = json.loads(text, parse_constant=_reject_constant)
        if _SURROGATE_ESCAPE.search(text):
            _refuse_lone_surrogates(value)
        return value
    except json.JSONDecodeError as exc:
        raise InvalidEvent(
            "invalid_json",
            f"The event is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
        ) from None
    except RecursionError:
        raise InvalidEvent("invalid_json", "The event nests too deeply to parse.") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise InvalidEvent("invalid_json", f"The event is not valid JSON: {exc}.") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(value: object) -> None:
    """A ``\\uD83D`` escape without its pair parses, but no UTF-8 text can carry it."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(
            "invalid_json",
            "The event is not valid JSON text: it escapes a lone UTF-16 surrogate "
            "(half of a \\uD83D\\uDE00 pair), which no UTF-8 text can carry.",
        ) from None


def _reject_constant(name: str) -> object:
    """Refuse ``NaN``/``Infinity``: Python's JSON reader accepts them, the standard does not."""
    raise InvalidEvent("invalid_json", f"The event is not valid JSON: {name} is not a JSON value.")


def normalize(
    raw: object, *, received_at: int, page_view_event: str = DEFAULT_PAGE_VIEW_EVENT
) -> Event:
    """Turn a parsed event into an ``Event``, detecting its shape; else ``InvalidEvent``."""
    try:
        return _dispatch(raw, received_at=received_at, page_view_event=page_view_event)
    except RecursionError:
        # A backstop: depth is bounded while unwrapping, but hashing walks the whole raw event.
        raise InvalidEvent("invalid_field", "The event nests too deeply to read.") from None


def _dispatch(raw: object, *, received_at: int, page_view_event: str) -> Event:
    """Pick the reader for the event's shape."""
    if isinstance(raw, dict):
        if "method" in raw:
            return from_envelope(raw, received_at=received_at, page_view_event=page_view_event)
        if "type" in raw:
            return from_segment(raw, received_at=received_at, page_view_event=page_view_event)
        raise InvalidEvent(
            "unknown_shape",
            "The event object has neither method (CustomerLabs) nor type (Segment).",
        )
    if isinstance(raw, list):
        return from_queue(raw, received_at=received_at, page_view_event=page_view_event)
    raise InvalidEvent(
        "not_an_object",
        f"The event is {describe(raw)}, not a JSON object or a CustomerLabs queue array.",
    )
