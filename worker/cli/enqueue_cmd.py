"""``cio-relay enqueue FILE|-``: push JSON-lines events onto the inbox with a progress bar."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO

import redis
from tqdm import tqdm

from worker.cli.common import add_json_flag, context
from worker.cli.output import emit_json, emit_table, fail
from worker.errors import InvalidEvent
from worker.producer import PIPELINE_CHUNK, add_events, encode_event
from worker.redisconn import Durability, describe_refusal


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
    durability = Durability.from_settings(ctx.settings)
    accepted = 0
    rejected: list[dict[str, object]] = []
    chunk: list[bytes] = []
    total = None if args.file == "-" else _count_lines(args.file)
    show = not args.no_progress and not args.json
    try:
        with stream, tqdm(total=total, unit="ev", disable=not show, file=sys.stderr) as bar:
            for lineno, line in _lines(stream):
                bar.update(1)
                try:
                    chunk.append(encode_event(line, ctx.settings.max_event_bytes))
                except InvalidEvent as exc:
                    rejected.append({"line": lineno, "reason": exc.reason, "detail": exc.detail})
                    continue
                if len(chunk) >= PIPELINE_CHUNK:
                    accepted += len(add_events(ctx.redis, ctx.keys.inbox, chunk, durability))
                    chunk = []
            if chunk:
                accepted += len(add_events(ctx.redis, ctx.keys.inbox, chunk, durability))
    except redis.RedisError as exc:
        # Every chunk before this one is acknowledged; this one and the rest are not.
        return _refused(args, accepted, rejected, exc)
    _report(args, accepted, rejected)
    return 1 if rejected else 0


def _report(args: argparse.Namespace, accepted: int, rejected: list[dict[str, object]]) -> None:
    if args.json:
        for r in rejected:
            emit_json({"type": "rejected", **r})
        emit_json({"type": "summary", "accepted": accepted, "rejected": len(rejected)})
    else:
        if rejected:
            emit_table(rejected, ["line", "reason", "detail"], out=sys.stderr)
        print(f"accepted {accepted}, rejected {len(rejected)}")


def _refused(
    args: argparse.Namespace,
    accepted: int,
    rejected: list[dict[str, object]],
    exc: redis.RedisError,
) -> int:
    """Redis refused a chunk: say why, and how many events before it are acknowledged."""
    reason = describe_refusal(exc)
    if args.json:
        emit_json({"type": "error", "accepted": accepted, "message": reason})
    _report(args, accepted, rejected)
    return fail(f"{reason}; {accepted} events were acknowledged before it, the rest were not")


def _lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for lineno, line in enumerate(stream, start=1):
        if line.strip():
            yield lineno, line


def _count_lines(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())
