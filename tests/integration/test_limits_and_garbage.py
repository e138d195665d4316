"""Shared rate limit against a throttling Customer.io, and garbage pushed by raw XADD."""

from __future__ import annotations

import json
import random

import pytest

from tests.integration.conftest import Relay, wait_until
from tests.integration.test_faults import delivered_ids, purchases
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration


def test_three_replicas_stay_under_a_20_rps_limit(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path
) -> None:
    """Three worker processes with CIO_MAX_RPS=18 against a 20/s workspace: all once, <5% 429."""
    env = {**relay_env, "CIO_MAX_RPS": "18", "CIO_BATCH_SIZE": "15"}
    emulator_client.set_faults(rate_limit_rps=20, retry_after_s=1)
    relay = Relay(env, tmp_path)
    relay.start(concurrency=1)
    relay.start(concurrency=1)
    relay.start(concurrency=1)
    try:
        enqueue_many(relay.redis, purchases(1500, "storm"), prefix=relay.prefix)
        wait_until(lambda: len(delivered_ids(emulator_client)) >= 1500, 180, "all events")
        ids = delivered_ids(emulator_client)
        assert sorted(ids) == sorted(event_ulid(f"msg:storm-{i}") for i in range(1500))
        counters = emulator_client.counters()
        assert counters["rate_limited"] < 0.05 * counters["requests_total"]
        assert relay.redis.xlen(Keys(relay.prefix).dlq) == 0
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
