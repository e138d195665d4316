"""Shared rate limit against a throttling Customer.io, and garbage pushed by raw XADD."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Relay, inbox_empty, wait_until
from tests.integration.test_faults import delivered_ids, purchases
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration


def replicas(relay_env: dict[str, str], tmp_path: Path, **env: str) -> Relay:
    """Three worker replicas (one pool process each) and one beat, as deployed."""
    relay = Relay({**relay_env, **env}, tmp_path)
    for _ in range(3):
        relay.start(concurrency=1, beat=False)
    relay.start_beat("beat")
    return relay


def replicas_that_sent(relay: Relay) -> int:
    """How many worker logs show a batch that made at least one request."""
    sent = 0
    for log in sorted(relay.logdir.glob("worker*.log")):
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        sent += any(x.get("event") == "batch" and x.get("requests", 0) > 0 for x in lines)
    return sent


def test_three_replicas_stay_under_a_20_rps_limit(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    """5,000 events, three replicas with CIO_MAX_RPS=18 against a 20/s workspace: all
    accepted once, none dead, under 5% of requests answered 429."""
    n = 5000
    emulator_client.set_faults(rate_limit_rps=20, retry_after_s=1)
    relay = replicas(relay_env, tmp_path, CIO_MAX_RPS="18", CIO_BATCH_SIZE="10")
    try:
        enqueue_many(relay.redis, purchases(n, "storm"), prefix=relay.prefix)
        wait_until(
            lambda: emulator_client.counters()["events_accepted"] >= n and inbox_empty(relay),
            150,
            "all events delivered and settled",
        )
        ids = delivered_ids(emulator_client)
        assert sorted(ids) == sorted(event_ulid(f"msg:storm-{i}") for i in range(n))
        counters = emulator_client.counters()
        assert counters["events_accepted"] == n
        assert counters["events_duplicate"] == 0
        assert counters["requests_total"] >= n // 10
        assert counters["rate_limited"] < 0.05 * counters["requests_total"], counters
        assert relay.redis.xlen(Keys(relay.prefix).dlq) == 0
        assert replicas_that_sent(relay) == 3
    finally:
        relay.stop()


def sends_during_a_429_pause(records: list[dict[str, Any]], grace_s: float) -> list[str]:
    """Requests that reached the emulator while a 429's Retry-After pause was in force.

    A request already on its way when the 429 was answered may arrive just after it, so
    the first ``grace_s`` of each pause is not held against the relay.
    """
    pauses = [
        (r["time"], float(r["response_headers"]["Retry-After"]))
        for r in records
        if r["status"] == 429
    ]
    found = []
    for start, seconds in pauses:
        for r in records:
            if start + grace_s < r["time"] < start + seconds - 0.01:
                found.append(f"{r['status']} at +{r['time'] - start:.3f}s after a 429")
    return found


def test_replicas_back_off_together_when_their_budget_is_above_the_workspace_limit(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    """CIO_MAX_RPS=100 against a 10/s workspace: the first 429 pauses every replica for its
    Retry-After, so 429s stay a small share; all delivered, none dead. (10/s, not 20: three
    replicas on a busy machine must still be sure to exceed it.)"""
    n = 2000
    emulator_client.set_faults(rate_limit_rps=10, retry_after_s=2)
    relay = replicas(relay_env, tmp_path, CIO_MAX_RPS="100", CIO_BATCH_SIZE="20")
    try:
        enqueue_many(relay.redis, purchases(n, "shared"), prefix=relay.prefix)
        wait_until(
            lambda: emulator_client.counters()["events_accepted"] >= n and inbox_empty(relay),
            150,
            "all events delivered and settled",
        )
        assert sorted(delivered_ids(emulator_client)) == sorted(
            event_ulid(f"msg:shared-{i}") for i in range(n)
        )
        assert relay.redis.xlen(Keys(relay.prefix).dlq) == 0
        records = [r for r in emulator_client.requests() if r["path"] == "/api/v2/batch"]
        statuses = Counter(r["status"] for r in records)
        assert set(statuses) == {200, 429}, statuses
        assert statuses[429] > 0, "the workspace limit was never reached"
        # Three replicas with one request in flight each: at most three 429s per pause, and
        # a pause comes at most once per workspace second's worth of accepted requests.
        pauses = statuses[200] / 10 + 1
        assert statuses[429] <= 3 * pauses, statuses
        assert sends_during_a_429_pause(records, grace_s=0.3) == []
        assert replicas_that_sent(relay) == 3
    finally:
        relay.stop()


GARBAGE: list[bytes] = [
    b"",
    b"not json",
    b"[]",
    b"42",
    b'"a string"',
    b"null",
    b'{"no": "method or type"}',
    b'{"type": "track"}',
    b'{"method": "trackClick", "properties": "nope"}',
    b'{"type": "track", "event": "Purchased", "timestamp": "yesterday", "userId": "x"}',
    b"[" * 5000 + b"]" * 5000,
    '{"type": "track", "event": "\ud800"}'.encode("utf-8", "surrogatepass"),
    b"\xff\xfe\x00garbage",
    json.dumps(
        {"type": "track", "event": "Purchased", "userId": "x", "properties": {"blob": "x" * 40_000}}
    ).encode(),
]


def test_garbage_is_dead_lettered_and_good_events_delivered(
    relay: Relay, emulator_client: EmulatorClient
) -> None:
    """Raw XADDs of garbage among good events: every good one delivered, every bad one in DLQ."""
    keys = Keys(relay.prefix)
    good = purchases(60, "good")
    rng = random.Random(7)
    items: list[dict[bytes, bytes]] = [{b"event": json.dumps(e).encode()} for e in good]
    items += [{b"event": g} for g in GARBAGE]
    items.append({b"wrong_field": b"{}"})
    rng.shuffle(items)
    for fields in items:
        relay.redis.xadd(keys.inbox, fields)
    bad = len(GARBAGE) + 1
    wait_until(lambda: relay.redis.xlen(keys.dlq) >= bad, 60, "the bad entries in the DLQ")
    wait_until(lambda: len(delivered_ids(emulator_client)) >= 60, 60, "the good events")
    assert sorted(delivered_ids(emulator_client)) == sorted(
        event_ulid(f"msg:good-{i}") for i in range(60)
    )
    letters = relay.redis.xrange(keys.dlq)
    assert len(letters) == bad
    assert all(fields[b"reason"] and fields[b"detail"] for _, fields in letters)
    assert relay.redis.xlen(keys.inbox) == 0
    assert all(p.poll() is None for p in relay.procs), "a relay process died"
