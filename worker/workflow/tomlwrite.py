"""The little TOML writing the workflow export needs: keys, strings and booleans."""

from __future__ import annotations

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def string(text: str) -> str:
    """A TOML basic string; control characters are escaped, everything else kept as is."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def key(name: str) -> str:
    """A TOML key, always quoted so names with spaces or dots survive unchanged."""
    return string(name)


def value(obj: str | bool | list[str]) -> str:
    """A TOML string, boolean, or list of strings."""
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, list):
        return "[" + ", ".join(string(item) for item in obj) + "]"
    return string(obj)
