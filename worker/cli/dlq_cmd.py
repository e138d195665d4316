"""``cio-relay dlq list|show|replay|purge|export``: inspect and act on dead letters."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from datetime import UTC, datetime

from tqdm import tqdm

from worker.cli.common import add_json_flag, context
from worker.cli.output import emit_json, emit_table, fail
from worker.dlq import DeadLetterQueue, Filter


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dlq", help="list, show, replay or purge dead-lettered events")
    sub = p.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    ls = sub.add_parser("list", help="list dead letters (oldest first)")
    _filters(ls)
    ls.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    add_json_flag(ls)
    ls.set_defaults(func=list_cmd)

    show = sub.add_parser("show", help="show one dead letter with its original event")
    show.add_argument("id")
    add_json_flag(show)
    show.set_defaults(func=show_cmd)

    _bulk_action(
        sub, "replay", "move dead letters back to the inbox (same event, same ULID)", replay_cmd
    )
    _bulk_action(sub, "purge", "delete dead letters for good", purge_cmd)

    export = sub.add_parser("export", help="write dead letters as JSON lines")
    export.add_argument("file", metavar="FILE", help="output file, or - for stdout")
    _filters(export)
    export.set_defaults(func=export_cmd)


def _bulk_action(sub: argparse._SubParsersAction, verb: str, help_text: str, func: object) -> None:
    """A subcommand acting on chosen dead letters: IDs, filters or --all, with --dry-run."""
    p = sub.add_parser(verb, help=help_text)
    p.add_argument("ids", nargs="*", metavar="ID", help=f"{verb} only these entries")
    _filters(p)
    p.add_argument("--all", action="store_true", help=f"{verb} every dead letter")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help=f"say what would be {verb}{'d' if verb.endswith('e') else 'ed'}",
    )
    add_json_flag(p)
    p.set_defaults(func=func)


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reason", help="only this reason (e.g. missing_identifier)")
    p.add_argument("--name", help="only this event name")
    p.add_argument("--since", type=_time, help="dead at or after (ISO-8601 or Unix seconds)")
    p.add_argument("--until", type=_time, help="dead at or before (ISO-8601 or Unix seconds)")


def _time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _filter(args: argparse.Namespace) -> Filter:
    return Filter(
        reason=args.reason,
        name=args.name,
        since=args.since,
        until=args.until,
        ids=tuple(getattr(args, "ids", ()) or ()),
    )


def _iso(ts: str | float | None) -> str:
    if ts in (None, ""):
        return "-"
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_cmd(args: argparse.Namespace) -> int:
    ctx = context()
    rows = []
    for i, letter in enumerate(DeadLetterQueue(ctx.redis, ctx.keys).scan(_filter(args))):
        if i >= args.limit:
            break
        if args.json:
            emit_json(letter.as_dict())
        else:
            f = letter.fields
            rows.append(
                {
                    "id": letter.id,
                    "dead_at": _iso(f.get("dead_at")),
                    "reason": letter.reason,
                    "name": f.get("name"),
                    "status": f.get("http_status"),
                    "attempts": f.get("attempts"),
                    "detail": f.get("detail"),
                }
            )
    if not args.json:
        if rows:
            emit_table(rows, ["id", "dead_at", "reason", "name", "status", "attempts", "detail"])
        else:
            print("the dead-letter queue is empty" if not _any_filter(args) else "no match")
    return 0


def show_cmd(args: argparse.Namespace) -> int:
    ctx = context()
    letter = DeadLetterQueue(ctx.redis, ctx.keys).get(args.id)
    if letter is None:
        return fail(f"no dead letter {args.id}")
    if args.json:
        emit_json(letter.as_dict())
        return 0
    for key, value in letter.fields.items():
        if key == "raw":
            continue
        shown = _iso(value) if key.endswith("_at") and key != "received_at" else value
        print(f"{key:>17}: {shown}")
    print(f"{'raw':>17}:")
    try:
        print(json.dumps(json.loads(letter.fields.get("raw", "")), indent=2, ensure_ascii=False))
    except ValueError:
        print(letter.fields.get("raw", ""))
    return 0


def replay_cmd(args: argparse.Namespace) -> int:
    if not (args.ids or args.all or _any_filter(args)):
        return fail("say what to replay: IDs, --reason/--name/--since/--until, or --all")
    ctx = context()
    dlq = DeadLetterQueue(ctx.redis, ctx.keys)
    flt = _filter(args)
    total = sum(1 for _ in dlq.scan(flt))
    with tqdm(total=total, unit="ev", disable=args.json or total < 1000, file=sys.stderr) as bar:
        moved = dlq.replay(flt, dry_run=args.dry_run, progress=bar.update)
    verb = "would replay" if args.dry_run else "replayed"
    if args.json:
        for letter in moved:
            emit_json({"id": letter.id, "reason": letter.reason, "dry_run": args.dry_run})
        emit_json({"type": "summary", "replayed": len(moved), "dry_run": args.dry_run})
    else:
        print(f"{verb} {len(moved)} event(s)")
    return 0


def purge_cmd(args: argparse.Namespace) -> int:
    if not (args.ids or args.all or _any_filter(args)):
        return fail("say what to purge: IDs, --reason/--name/--since/--until, or --all")
    ctx = context()
    count = DeadLetterQueue(ctx.redis, ctx.keys).purge(_filter(args), dry_run=args.dry_run)
    if args.json:
        emit_json({"type": "summary", "purged": count, "dry_run": args.dry_run})
    else:
        print(f"{'would purge' if args.dry_run else 'purged'} {count} event(s)")
    return 0


def export_cmd(args: argparse.Namespace) -> int:
    ctx = context()
    out = sys.stdout if args.file == "-" else open(args.file, "w", encoding="utf-8")  # noqa: SIM115
    count = 0
    with out if out is not sys.stdout else nullcontext():
        for letter in DeadLetterQueue(ctx.redis, ctx.keys).scan(_filter(args)):
            emit_json(letter.as_dict(), out=out)
            count += 1
    if args.file != "-":
        print(f"exported {count} event(s) to {args.file}")
    return 0


def _any_filter(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) is not None for k in ("reason", "name", "since", "until"))
