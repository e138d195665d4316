"""JSON bodies parsed once, measuring each batch operation as it was sent."""

from __future__ import annotations

import json
import re
from typing import Any

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip(text: str, idx: int) -> int:
    match = _WS.match(text, idx)
    return match.end() if match else idx


def loads_with_item_sizes(raw: bytes, key: str) -> tuple[Any, list[int] | None]:
    """Parse a body; when it is an object whose ``key`` is a list, also each item's size in bytes.

    Sizes are those of the items' own bytes in the request, as Customer.io measures them,
    without serialising anything again. Raises ValueError (JSONDecodeError) on bad JSON.
    """
    text = raw.decode("utf-8")
    idx = _skip(text, 0)
    if not text.startswith("{", idx):
        return json.loads(text), None
    body: dict[str, Any] = {}
    sizes: list[int] | None = None
    ascii_only = raw.isascii()
    idx = _skip(text, idx + 1)
    if text.startswith("}", idx):
        idx += 1
    else:
        while True:
            if not text.startswith('"', idx):
                raise json.JSONDecodeError("Expecting property name", text, idx)
            name, idx = _DECODER.raw_decode(text, idx)
            idx = _skip(text, idx)
            if not text.startswith(":", idx):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, idx)
            idx = _skip(text, idx + 1)
            if name == key and text.startswith("[", idx):
                body[name], sizes, idx = _items(text, idx, ascii_only)
            else:
                body[name], idx = _DECODER.raw_decode(text, idx)
                if name == key:
                    sizes = None
            idx = _skip(text, idx)
            if text.startswith(",", idx):
                idx = _skip(text, idx + 1)
            elif text.startswith("}", idx):
                idx += 1
                break
            else:
                raise json.JSONDecodeError("Expecting ',' delimiter", text, idx)
    if _skip(text, idx) != len(text):
        raise json.JSONDecodeError("Extra data", text, idx)
    return body, sizes


def _items(text: str, idx: int, ascii_only: bool) -> tuple[list[Any], list[int], int]:
    """The items of the array starting at ``idx``, their sizes, and the index after it."""
    items: list[Any] = []
    sizes: list[int] = []
    idx = _skip(text, idx + 1)
    if text.startswith("]", idx):
        return items, sizes, idx + 1
    while True:
        start = idx
        item, idx = _DECODER.raw_decode(text, idx)
        items.append(item)
        sizes.append(idx - start if ascii_only else len(text[start:idx].encode()))
        idx = _skip(text, idx)
        if text.startswith(",", idx):
            idx = _skip(text, idx + 1)
        elif text.startswith("]", idx):
            return items, sizes, idx + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, idx)
