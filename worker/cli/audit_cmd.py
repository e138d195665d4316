"""``cio-relay audit``: print the audit log (console and CLI changes, sign-ins), newest first."""

from __future__ import annotations

import argparse

from worker import audit
from worker.cli.common import add_json_flag, context
from worker.cli.output import emit_json, emit_table
from worker.console.templating import when


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audit", help="print who changed what and when (newest first)")
    p.add_argument("-n", type=int, default=50, help="entries to print (default 50)")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = context()
    entries = audit.read(ctx.redis, ctx.keys, max(1, args.n))
    if args.json:
        for e in entries:
            emit_json(
                {"id": e.id, "at": e.at, "user": e.user, "action": e.action, "detail": e.detail}
            )
        return 0
    if not entries:
        print("the audit log is empty")
        return 0
    rows = [
        {"time": when(e.at), "user": e.user, "action": e.action, "detail": audit.describe(e.detail)}
        for e in entries
    ]
    emit_table(rows, ("time", "user", "action", "detail"))
    return 0
