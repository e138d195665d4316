"""``cio-relay stats``: counts by outcome, inbox lag, pending, DLQ size, pause, send rate."""

from __future__ import annotations

import argparse
import time

from worker.cli.common import add_json_flag, context
from worker.cli.output import emit_json
from worker.stats import collect

# Counter field and its label in the ``outcomes`` table.
OUTCOME_ROWS = (
    ("delivered", "delivered"),
    ("skipped", "skipped"),
    ("dead", "dead"),
    ("retry", "retry"),
    ("paused", "held while paused"),
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="show counts, lag, DLQ size, pause state, send rate")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = context()
    stats = collect(ctx.redis, ctx.keys, time.time())
    if args.json:
        emit_json(stats)
        return 0
    counts = stats["counts"]
    print("outcomes")
    for key, label in OUTCOME_ROWS:
        print(f"  {label:<28}{counts.get(key, 0)}")
        for sub, n in sorted(counts.items()):
            if sub.startswith(key + ":"):
                print(f"    {sub.split(':', 1)[1]:<26}{n}")
    inbox = stats["inbox"]
    print("inbox")
    print(f"  {'unread (lag)':<28}{inbox['unread']}")
    print(f"  {'pending (in flight + retry)':<28}{inbox['pending']}")
    print(f"  {'waiting for a retry':<28}{inbox['waiting_retry']}")
    ages = stats["ages"]
    print(f"  {'oldest unread':<28}{ages['oldest_unread_s']:.1f} s")
    print(f"  {'oldest pending':<28}{ages['oldest_pending_s']:.1f} s")
    print(f"{'dead-letter queue':<30}{stats['dlq']}")
    print(f"{'paused':<30}{stats['paused'] or 'no'}")
    print(f"{'throttled (429) for':<30}{stats['throttled_for_s']} s")
    rate = stats["rate"]
    print(
        f"{'send rate (last 10 s)':<30}{rate['events_per_s']} events/s, "
        f"{rate['requests_per_s']} requests/s"
    )
    print(f"{'batches':<30}{counts.get('batches', 0)}")
    http = {k: v for k, v in counts.items() if k.startswith("http:")}
    if http:
        print("http responses  " + ", ".join(f"{k[5:]}: {v}" for k, v in sorted(http.items())))
    return 0
