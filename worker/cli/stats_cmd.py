"""``cio-relay stats``: counts by outcome, inbox lag, pending, DLQ size, pause, send rate."""

from __future__ import annotations

import argparse
import time
from typing import Any

import redis

from worker.cli.common import add_json_flag, context
from worker.cli.output import emit_json
from worker.counters import read_counts, send_rate
from worker.inbox import Inbox
from worker.keys import CONSUMER_GROUP, Keys
from worker.redisconn import as_text, get_text, stream_rows

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


def collect(client: redis.Redis, keys: Keys, now: float) -> dict[str, Any]:
    """Everything ``stats`` reports, as one dict."""
    paused = get_text(client, keys.paused)
    throttled = client.get(keys.throttled_until)
    depth = Inbox(client, keys, "stats").depth()
    return {
        "counts": read_counts(client, keys),
        "inbox": depth,
        "ages": inbox_ages(client, keys, now),
        "dlq": int(client.xlen(keys.dlq)),
        "paused": paused or None,
        "throttled_for_s": round(max(0.0, float(throttled) - now), 1) if throttled else 0.0,
        "rate": send_rate(client, keys, now),
    }


def inbox_ages(client: redis.Redis, keys: Keys, now: float) -> dict[str, float]:
    """Seconds since the oldest unread entry and the oldest pending entry entered the inbox.

    An entry's age comes from its stream id (the time Redis added it); 0 when there is none.
    """
    ages = {"oldest_unread_s": 0.0, "oldest_pending_s": 0.0}
    try:
        groups = client.xinfo_groups(keys.inbox)
        pending = client.xpending(keys.inbox, CONSUMER_GROUP)
    except redis.ResponseError:  # no inbox or no group yet
        return ages
    group = next((g for g in groups if as_text(g["name"]) == CONSUMER_GROUP), None)
    if group is not None:
        after = as_text(group["last-delivered-id"])
        first = stream_rows(client.xrange(keys.inbox, f"({after}", "+", count=1))
        if first:
            ages["oldest_unread_s"] = _age(first[0][0], now)
    if pending and pending.get("min"):
        ages["oldest_pending_s"] = _age(as_text(pending["min"]), now)
    return ages


def _age(entry_id: str, now: float) -> float:
    return round(max(0.0, now - int(entry_id.split("-", 1)[0]) / 1000), 3)


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
