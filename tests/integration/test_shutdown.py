"""SIGTERM finishes or hands back the batch in flight; nothing is lost or sent twice."""

from __future__ import annotations

import signal

import pytest

from tests.integration.conftest import Relay, wait_until
from tests.integration.test_faults import delivered_ids, purchases
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration


def test_sigterm_mid_delivery_then_restart_delivers_each_event_once(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path
) -> None:
    """A worker stopped with SIGTERM exits promptly; a new one delivers the rest, once each."""
    env = {**relay_env, "CIO_BATCH_SIZE": "25"}
    emulator_client.set_faults(latency_ms=100)
    relay = Relay(env, tmp_path).start(concurrency=2)
    try:
        enqueue_many(relay.redis, purchases(800, "term"), prefix=relay.prefix)
        wait_until(lambda: len(delivered_ids(emulator_client)) > 100, 60, "delivery under way")
        worker = relay.procs[0]
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        assert worker.returncode == 0
        emulator_client.set_faults(latency_ms=0)
        relay.start(concurrency=2)
        wait_until(lambda: len(delivered_ids(emulator_client)) >= 800, 120, "all events")
        ids = delivered_ids(emulator_client)
        assert sorted(set(ids)) == sorted(event_ulid(f"msg:term-{i}") for i in range(800))
        assert relay.redis.xlen(Keys(relay.prefix).dlq) == 0
    finally:
        relay.stop()
