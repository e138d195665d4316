"""Outcome counters shared by all replicas, and the per-second send rate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import redis

from worker.keys import Keys
from worker.outcomes import Outcome
from worker.redisconn import hash_ints

RATE_WINDOW_S = 10


def outcome_counts(outcomes: Iterable[Outcome]) -> Counter[str]:
    """Counter fields for a batch of outcomes: ``delivered``, ``skipped:<reason>``..."""
    counts: Counter[str] = Counter()
    for o in outcomes:
        counts[o.status] += 1
        if o.reason and o.status in ("skipped", "dead"):
            counts[f"{o.status}:{o.reason}"] += 1
    return counts


def add_counts(pipe: redis.client.Pipeline, keys: Keys, counts: Counter[str]) -> None:
    """Queue HINCRBYs for every non-zero count."""
    for field, n in counts.items():
        if n:
            pipe.hincrby(keys.counters, field, n)


def note_batch(pipe: redis.client.Pipeline, keys: Keys, entries: int) -> None:
    """Queue the counters of one processed batch: ``batches`` and ``batch_entries``."""
    pipe.hincrby(keys.counters, "batches", 1)
    pipe.hincrby(keys.counters, "batch_entries", entries)


def note_request(
    pipe: redis.client.Pipeline, keys: Keys, now: float, status: int | str, events: int
) -> None:
    """Queue the counters of one HTTP request: by status, and events sent this second."""
    second = int(now)
    pipe.hincrby(keys.counters, "requests", 1)
    pipe.hincrby(keys.counters, f"http:{status}", 1)
    rate_key = keys.rate(second)
    pipe.hincrby(rate_key, "requests", 1)
    pipe.hincrby(rate_key, "events", events)
    pipe.expire(rate_key, RATE_WINDOW_S * 3)


def read_counts(client: redis.Redis, keys: Keys) -> dict[str, int]:
    return hash_ints(client, keys.counters)


def send_rate(client: redis.Redis, keys: Keys, now: float) -> dict[str, float]:
    """Requests and events per second over the last complete seconds."""
    pipe = client.pipeline(transaction=False)
    seconds = range(int(now) - RATE_WINDOW_S, int(now))
    for s in seconds:
        pipe.hmget(keys.rate(s), "requests", "events")
    requests = events = 0
    for req, ev in pipe.execute():
        requests += int(req or 0)
        events += int(ev or 0)
    return {
        "requests_per_s": round(requests / RATE_WINDOW_S, 2),
        "events_per_s": round(events / RATE_WINDOW_S, 2),
    }
