"""Drains hand over to each other; the beat is what restarts them when a worker dies whole."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Relay, inbox_empty, wait_until
from tests.integration.live_producer import Producer
from tests.integration.test_beat_restart import settles
from tests.integration.test_faults import delivered_ids, pool_children
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys

pytestmark = pytest.mark.integration


def kill_worker(relay: Relay, index: int) -> None:
    """SIGKILL a worker's main process and its pool: its drains end without handing over."""
    main = relay.procs[index]
    for pid in pool_children(main.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    main.send_signal(signal.SIGKILL)
    main.wait(10)


def test_beat_gone_drains_go_on_worker_killed_too_the_beat_restarts_them(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    """While an app enqueues 40 events/s: the beat SIGKILLed alone changes nothing
    (running drains queue their successors); the worker SIGKILLed too and a new one
    started leaves the inbox unread (nothing queues a drain); a new beat finds no drain
    running and starts one: every event delivered, each stored once, none dead."""
    n = 1200
    env = {**relay_env, "CIO_BATCH_SIZE": "20"}
    relay = Relay(env, tmp_path).start(concurrency=2, beat=False)
    beat = relay.start_beat("schedule")
    producer = Producer(env["CIO_REDIS_URL"], relay.prefix, tag="guard", pause_s=1 / 40, limit=n)
    accepted = lambda: int(emulator_client.counters()["events_accepted"])  # noqa: E731
    try:
        producer.start()
        wait_until(lambda: accepted() >= 100, 60, "delivery under way")
        beat.send_signal(signal.SIGKILL)
        beat.wait(10)
        mark = accepted()
        wait_until(lambda: accepted() >= mark + 100, 30, "delivery going on without the beat")

        kill_worker(relay, 0)
        time.sleep(3)  # drains queued before the kill expire unrun
        relay.start(concurrency=2, beat=False)
        wait_until(lambda: "ready." in (tmp_path / "worker2.log").read_text(), 60, "new worker")
        stalled = settles(accepted, quiet_s=5.0, timeout_s=40)
        assert len(producer.acknowledged) - stalled > 50, "the inbox was read without a beat"

        relay.start_beat("schedule")
        producer.join(90)
        assert len(producer.acknowledged) == n and producer.failures == 0
        wait_until(lambda: accepted() >= n and inbox_empty(relay), 120, "every event")
        # A batch cut off by the kill is re-sent with the same ULIDs; Customer.io (and
        # the emulator) keep one of each.
        ids = delivered_ids(emulator_client)
        assert sorted(ids) == sorted(event_ulid(f"msg:guard-{i}") for i in range(n))
        assert relay.redis.xlen(Keys(relay.prefix).dlq) == 0
    finally:
        producer.halt.set()
        relay.stop()
