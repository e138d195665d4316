"""Celery beat killed mid-run and started again: delivery stalls, then resumes, each event once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import Relay, inbox_empty, wait_until
from tests.integration.live_producer import Producer
from tests.integration.test_faults import delivered_ids
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys

pytestmark = pytest.mark.integration


def settles(read: Callable[[], int], quiet_s: float, timeout_s: float) -> int:
    """Wait until ``read()`` stops changing for ``quiet_s``; returns the settled value."""
    last, since = read(), time.monotonic()
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        time.sleep(0.2)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
    raise AssertionError(f"still changing after {timeout_s}s")


def test_beat_killed_twice_and_restarted_delivers_every_event_once(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    """SIGKILL the only beat twice while an app enqueues 60 events/s; with it gone the
    running drains keep queueing their successors, so delivery goes on, and a new beat
    on the same schedule file starts where it stopped: all accepted once, none dead.
    (test_beat_guarantee.py shows what the beat is needed for: a worker killed whole.)"""
    n = 1500
    env = {**relay_env, "CIO_BATCH_SIZE": "20"}
    relay = Relay(env, tmp_path).start(concurrency=2, beat=False)
    beat = relay.start_beat("schedule")
    producer = Producer(env["CIO_REDIS_URL"], relay.prefix, tag="beat", pause_s=1 / 60, limit=n)
    accepted = lambda: int(emulator_client.counters()["events_accepted"])  # noqa: E731
    try:
        producer.start()
        for _ in (1, 2):
            mark = accepted()
            wait_until(lambda m=mark: accepted() >= m + 100, 60, "delivery under way")
            beat.send_signal(signal.SIGKILL)
            beat.wait(10)
            mark = accepted()
            wait_until(lambda m=mark: accepted() >= m + 100, 60, "delivery without the beat")
            beat = relay.start_beat("schedule")
        producer.join(60)
        assert len(producer.acknowledged) == n and producer.failures == 0
        wait_until(
            lambda: accepted() >= n and inbox_empty(relay), 120, "all events after the restarts"
        )
        ids = delivered_ids(emulator_client)
        assert sorted(ids) == sorted(event_ulid(f"msg:beat-{i}") for i in range(n))
        counters = emulator_client.counters()
        assert counters["events_accepted"] == n
        assert counters["events_duplicate"] == 0
        assert relay.redis.xlen(Keys(relay.prefix).dlq) == 0
        assert relay.procs[0].poll() is None, "the worker died"
    finally:
        producer.halt.set()
        relay.stop()
