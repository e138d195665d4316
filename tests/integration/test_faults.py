"""Fault cases over real processes: SIGKILL mid-batch, 401 pause (outages: test_outages.py)."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.integration.conftest import Relay, wait_until
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration


def purchases(n: int, tag: str) -> list[dict[str, object]]:
    return [
        {
            "type": "track",
            "event": "Purchased",
            "userId": f"user-{i % 7}",
            "messageId": f"{tag}-{i}",
            "timestamp": "2026-03-02T10:15:00Z",
            "context": {"traits": {"email": f"buyer{i % 7}@example.com"}},
            "properties": {"order": i},
        }
        for i in range(n)
    ]


def delivered_ids(client: EmulatorClient) -> list[str]:
    return [e["id"] for e in client.events()]


def pool_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_sigkill_of_busy_workers_loses_nothing(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path
) -> None:
    """Killing pool processes with SIGKILL three times mid-delivery: every event arrives once."""
    relay_env = {**relay_env, "CIO_BATCH_SIZE": "40"}
    emulator_client.set_faults(latency_ms=150)
    relay = Relay(relay_env, tmp_path).start(concurrency=2)
    try:
        events = purchases(1500, "kill")
        enqueue_many(relay.redis, events, prefix=relay.prefix)
        worker_pid = relay.procs[0].pid
        killed = []
        for round_ in range(3):
            wait_until(
                lambda r=round_: len(delivered_ids(emulator_client)) > 100 * (r + 1),
                60,
                "delivery to be under way",
            )
            children = [c for c in pool_children(worker_pid) if c not in killed]
            assert children, "the worker has no pool processes"
            os.kill(children[0], signal.SIGKILL)
            killed.append(children[0])
        emulator_client.set_faults(latency_ms=0)
        inbox = Keys(relay.prefix).inbox
        wait_until(
            lambda: (
                emulator_client.counters()["events_accepted"] >= 1500
                and relay.redis.xlen(inbox) == 0
            ),
            120,
            "all events delivered and settled",
        )
        ids = delivered_ids(emulator_client)
        assert sorted(ids) == sorted(event_ulid(f"msg:kill-{i}") for i in range(1500))
        assert not set(killed) & set(pool_children(worker_pid)), "a killed process lives"
        # A batch was in flight in a killed process: its entries were re-claimed.
        assert "orphans_reclaimed" in relay.logs()
        assert relay.redis.xlen(Keys(relay.prefix).dlq) == 0
    finally:
        relay.stop()


def test_401_pauses_without_dead_letters_then_resumes(
    relay: Relay, emulator_client: EmulatorClient
) -> None:
    """A 401 pauses delivery and keeps every event; fixed credentials deliver them all."""
    keys = Keys(relay.prefix)
    emulator_client.set_faults(unauthorized=True)
    enqueue_many(relay.redis, purchases(30, "auth"), prefix=relay.prefix)
    wait_until(lambda: relay.redis.get(keys.paused) is not None, 60, "the pause")
    assert "401" in relay.redis.get(keys.paused).decode()
    assert relay.redis.xlen(keys.dlq) == 0
    assert emulator_client.events() == []
    stats = relay.cli("stats", "--json")
    assert '"paused":' in stats.stdout and "401" in stats.stdout
    emulator_client.set_faults(unauthorized=False)
    wait_until(lambda: len(emulator_client.events()) == 30, 60, "delivery after the probe")
    assert relay.redis.get(keys.paused) is None
    assert relay.redis.xlen(keys.dlq) == 0


def test_one_poison_operation_in_a_batch_rejected_whole_dead_letters_only_itself(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path
) -> None:
    """A batch of 100 that Customer.io refuses as a whole (400) because of one operation:
    the other 99 are delivered, exactly the poison one is dead-lettered."""
    n, poison = 100, 37
    emulator_client.set_faults(poison="POISON-MARK")
    events = purchases(n, "batch")
    events[poison]["properties"] = {"note": "POISON-MARK"}
    relay = Relay({**relay_env, "CIO_BATCH_SIZE": str(n)}, tmp_path)
    enqueue_many(relay.redis, events, prefix=relay.prefix)  # before start: one batch
    relay.start()
    try:
        keys = Keys(relay.prefix)
        wait_until(lambda: relay.redis.xlen(keys.dlq) >= 1, 60, "the dead letter")
        wait_until(lambda: len(delivered_ids(emulator_client)) >= n - 1, 60, "the others")
        assert sorted(delivered_ids(emulator_client)) == sorted(
            event_ulid(f"msg:batch-{i}") for i in range(n) if i != poison
        )
        ((_, letter),) = relay.redis.xrange(keys.dlq)
        assert letter[b"reason"] == b"rejected"
        assert letter[b"http_status"] == b"400"
        assert letter[b"event_id"].decode() == event_ulid(f"msg:batch-{poison}")
        assert b"POISON-MARK" in letter[b"raw"]
        batches = [r for r in emulator_client.requests() if r["path"] == "/api/v2/batch"]
        assert len(batches[0]["body"]["batch"]) == n and batches[0]["status"] == 400
        # Halving finds the poison in a few requests, not one request per event.
        assert len(batches) <= 2 * 7 + 1
        assert relay.redis.xlen(keys.inbox) == 0
    finally:
        relay.stop()
