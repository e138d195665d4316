"""One snapshot of the relay's shared state in Redis: what ``cio-relay stats`` prints and
``cio-relay metrics`` exports."""

from __future__ import annotations

from typing import Any

import redis

from worker.counters import read_counts, send_rate
from worker.inbox import Inbox
from worker.keys import CONSUMER_GROUP, Keys
from worker.redisconn import as_text, get_text, stream_rows


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
