"""``cio-relay activity [--follow]``: recent outcomes, like Customer.io's Activity Logs."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from worker.activity import follow, recent
from worker.cli.common import add_json_flag, context
from worker.cli.output import emit_json

COLUMNS = ("time", "outcome", "reason", "name", "identifier", "event_id", "http")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("activity", help="show recent outcomes (delivered, skipped, dead…)")
    p.add_argument("-n", "--count", type=int, default=50, help="how many recent entries (50)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    p.add_argument("--outcome", help="only this outcome (delivered, skipped, retry, dead)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = context()
    rows = recent(ctx.redis, ctx.keys, args.count)
    if not args.json:
        print(_line({c: c.upper() for c in COLUMNS}))
    last = rows[-1]["id"] if rows else "$"
    for row in rows:
        _show(row, args)
    if args.follow:
        for row in follow(ctx.redis, ctx.keys, after=last):
            _show(row, args)
    elif not rows and not args.json:
        print("no activity yet")
    return 0


def _show(row: dict[str, Any], args: argparse.Namespace) -> None:
    if args.outcome and row.get("outcome") != args.outcome:
        return
    if args.json:
        emit_json(row)
        return
    at = datetime.fromtimestamp(float(row.get("at", 0)), UTC).strftime("%H:%M:%S")
    print(
        _line(
            {
                "time": at,
                "outcome": row.get("outcome", ""),
                "reason": row.get("reason", ""),
                "name": row.get("name", ""),
                "identifier": row.get("identifier", ""),
                "event_id": row.get("event_id", ""),
                "http": row.get("http_status", ""),
            }
        ),
        flush=True,
    )


def _line(cells: dict[str, str]) -> str:
    widths = {"time": 8, "outcome": 9, "reason": 18, "name": 20, "identifier": 26, "event_id": 26}
    return "  ".join(
        str(cells[c])[: widths.get(c, 6)].ljust(widths.get(c, 6)) for c in COLUMNS
    ).rstrip()
