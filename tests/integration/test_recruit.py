"""A burst on an idle relay: one drain recruits the rest of the pool, with no beat ticks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, Relay, inbox_empty, wait_until
from tests.integration.test_faults import delivered_ids, purchases
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import CONSUMER_GROUP, Keys
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration


def test_one_drain_recruits_every_idle_process_for_a_backlog(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    """Without a beat, a single drain sent by hand meets a backlog of full batches: it
    recruits a drain, which recruits another, until all three processes read the inbox;
    every event arrives once."""
    n = 3000
    env = {**relay_env, "CIO_BATCH_SIZE": "50", "CIO_DRAIN_BUDGET_S": "5"}
    emulator_client.set_faults(latency_ms=100)
    relay = Relay(env, tmp_path).start(concurrency=3, beat=False)
    keys = Keys(relay.prefix)
    try:
        wait_until(lambda: "ready." in relay.logs(), 60, "the worker")
        enqueue_many(relay.redis, purchases(n, "burst"), prefix=relay.prefix)
        subprocess.run(
            [sys.executable, "-m", "celery", "-A", "worker.app", "call", "relay.drain"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(lambda: inbox_empty(relay), 90, "the backlog delivered")
        readers = relay.redis.xinfo_consumers(keys.inbox, CONSUMER_GROUP)
        assert len(readers) == 3, f"{len(readers)} of 3 processes read the inbox"
        assert sorted(delivered_ids(emulator_client)) == sorted(
            event_ulid(f"msg:burst-{i}") for i in range(n)
        )
        assert emulator_client.counters()["events_duplicate"] == 0
    finally:
        relay.stop()
