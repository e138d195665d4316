"""Finds the source line of a key or table in TOML text, so errors can point at it.

tomllib returns plain dicts without positions, so the text is scanned once: every table
header and every ``key =`` line is recorded under its full key path, with the n-th
``[[array]]`` table as index n. This is a best effort for the workflow's simple shape
(no multi-line inline tables); a path that was not seen falls back to its nearest parent.
"""

from __future__ import annotations

import re
import tomllib

Where = tuple[str | int, ...]

_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\]|\\.)*"'
_LITERAL = r"'[^']*'"
_PART = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]")
_KEY_LINE = re.compile(rf"^\s*({_DOTTED})\s*=")
_SPLIT = re.compile(rf"\s*({_PART})\s*(?:\.|$)")


class Locator:
    """Maps key paths such as ``("events", "X", "trigger_paths", 1, "match")`` to 1-based lines."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Where, int] = {}
        self._scan(text)

    def __call__(self, where: Where) -> int | None:
        """The line of ``where``, else of its nearest recorded parent, else None."""
        for end in range(len(where), 0, -1):
            line = self._lines.get(where[:end])
            if line is not None:
                return line
        return None

    def _record(self, where: Where, line: int) -> None:
        self._lines.setdefault(where, line)

    def _scan(self, text: str) -> None:
        table: Where = ()
        arrays: dict[Where, int] = {}
        in_multiline: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if in_multiline is not None:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = _HEADER.match(line)
            if header is not None:
                path = _split(header.group(2))
                if header.group(1) == "[[":
                    index = arrays.get(path, -1) + 1
                    arrays[path] = index
                    table = (*path, index)
                else:
                    table = path
                self._record(table, number)
                continue
            key = _KEY_LINE.match(line)
            if key is None:
                continue
            self._record((*table, *_split(key.group(1))), number)
            rest = line[key.end() :]
            for quotes in ('"""', "'''"):
                if rest.count(quotes) % 2 == 1:
                    in_multiline = quotes
                    break


def _split(dotted: str) -> tuple[str, ...]:
    return tuple(_unquote(m.group(1)) for m in _SPLIT.finditer(dotted))


def _unquote(part: str) -> str:
    if part.startswith("'"):
        return part[1:-1]
    if part.startswith('"'):
        try:
            return str(tomllib.loads(f"k = {part}")["k"])
        except tomllib.TOMLDecodeError:
            return part[1:-1]
    return part
