"""``cio-relay enqueue FILE|-``: push JSON-lines events onto the inbox with a progress bar."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO

from tqdm import tqdm

from worker.cli.common import add_json_flag, context
from worker.cli.output import emit_json, emit_table
from worker.errors import InvalidEvent
from worker.producer import PIPELINE_CHUNK, encode_event


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "enqueue",
        help="push events (one JSON object per line) onto the inbox",
        description="Read JSON lines from FILE (or - for stdin), validate each and XADD it "
        "to the inbox. Bad lines are reported with their line number; good ones are sent.",
    )
    p.add_argument("file", metavar="FILE", help="JSON-lines file, or - for standard input")
    p.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = context()
    stream: IO[str] = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    accepted = 0
    rejected: list[dict[str, object]] = []
    pipe = ctx.redis.pipeline(transaction=False)
    pending = 0
    total = None if args.file == "-" else _count_lines(args.file)
    show = not args.no_progress and not args.json
    with stream, tqdm(total=total, unit="ev", disable=not show, file=sys.stderr) as bar:
        for lineno, line in _lines(stream):
            bar.update(1)
            try:
                data = encode_event(line, ctx.settings.max_event_bytes)
            except InvalidEvent as exc:
                rejected.append({"line": lineno, "reason": exc.reason, "detail": exc.detail})
                continue
            pipe.xadd(ctx.keys.inbox, {"event": data})
            pending += 1
            if pending >= PIPELINE_CHUNK:
                accepted += len(pipe.execute())
                pending = 0
        if pending:
            accepted += len(pipe.execute())
    if args.json:
        for r in rejected:
            emit_json({"type": "rejected", **r})
        emit_json({"type": "summary", "accepted": accepted, "rejected": len(rejected)})
    else:
        if rejected:
            emit_table(rejected, ["line", "reason", "detail"], out=sys.stderr)
        print(f"accepted {accepted}, rejected {len(rejected)}")
    return 1 if rejected else 0


def _lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for lineno, line in enumerate(stream, start=1):
        if line.strip():
            yield lineno, line


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())
