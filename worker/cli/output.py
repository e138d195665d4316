"""Printing for every command: a table or lines for people, one JSON object a line with --json."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO


def emit_json(obj: Mapping[str, Any], out: TextIO | None = None) -> None:
    """Print one JSON object on one line (the ``--json`` form of every command)."""
    stream = out or sys.stdout
    stream.write(json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":")) + "\n")
    stream.flush()


def emit_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], out: TextIO | None = None
) -> None:
    """Print rows as an aligned table with a header line."""
    stream = out or sys.stdout
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    stream.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)) + "\n")
    for r in cells:
        stream.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    stream.flush()


def fail(message: str) -> int:
    """Print one error line to stderr and return the exit status for a failed command."""
    sys.stderr.write(f"cio-relay: {message}\n")
    return 1


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
