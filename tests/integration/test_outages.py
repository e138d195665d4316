"""A minute-long Customer.io outage mid-run, as 503s and as refused connections.

Each outage gets its own emulator (with a separate control port, so the control API stays
reachable while the Track port is closed) and its own relay; the two run side by side.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (
    API_KEY,
    SITE_ID,
    Relay,
    free_port,
    inbox_empty,
    wait_until,
)
from tests.integration.test_faults import purchases
from worker.backoff import backoff_s
from worker.emulator import EmulatorClient, EmulatorServer
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import enqueue_many
from worker.settings import Settings

pytestmark = pytest.mark.integration

OUTAGE_S = 60.0
BEFORE, DURING = 400, 200
# Short enough that delivery resumes within seconds of recovery, long enough that 20
# attempts outlast the outage (see test_retry_schedule_outlasts_the_outage).
RETRY = {"CIO_RETRY_BASE_S": "1", "CIO_RETRY_CAP_S": "8"}


def slowest_exhaustion_s(settings: Settings) -> float:
    """The shortest time in which an event can spend all its attempts: every backoff at
    its minimum (the jitter drawn as 0)."""
    return sum(
        backoff_s(
            attempt,
            base_s=settings.retry_base_s,
            cap_s=settings.retry_cap_s,
            rand=lambda: 0.0,
        )
        for attempt in range(1, settings.max_attempts)
    )


def test_retry_schedule_outlasts_the_outage() -> None:
    """Neither the default schedule nor this file's can dead-letter within the outage."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.max_attempts == 20
    assert slowest_exhaustion_s(defaults) > 10 * OUTAGE_S
    here = Settings(retry_base_s=float(RETRY["CIO_RETRY_BASE_S"]), retry_cap_s=8.0)
    assert slowest_exhaustion_s(here) > OUTAGE_S


class OutageRun:
    """One relay against one emulator that breaks for OUTAGE_S once delivery is under way."""

    def __init__(self, mode: str, relay_env: dict[str, str], logdir: Path) -> None:
        self.mode = mode
        self.tag = f"out{mode}"
        self.server = EmulatorServer(
            site_id=SITE_ID, api_key=API_KEY, control_port=free_port()
        ).start()
        self.control = EmulatorClient(self.server.control_url)
        env = {
            **relay_env,
            **RETRY,
            "CIO_TRACK_URL": self.server.url,
            "CIO_REDIS_PREFIX": f"{relay_env['CIO_REDIS_PREFIX']}{mode}",
            "CIO_BATCH_SIZE": "20",
            "CIO_MAX_RPS": "10",
            "CIO_ACTIVITY_MAX": "100000",
        }
        logdir.mkdir()
        self.relay = Relay(env, logdir).start(concurrency=2)
        self.keys = Keys(self.relay.prefix)
        self.accepted_before = 0
        self.reasons: Counter[str] = Counter()

    def enqueue(self, first: int, count: int) -> None:
        events = purchases(first + count, self.tag)[first:]
        enqueue_many(self.relay.redis, events, prefix=self.relay.prefix)

    def accepted(self) -> int:
        return int(self.control.counters()["events_accepted"])

    def break_for_a_minute(self) -> None:
        self.control.set_faults(outage=self.mode, outage_s=OUTAGE_S)
        assert self.control.health()["outage"] == self.mode
        self.accepted_before = self.accepted()

    def retries(self) -> Counter[str]:
        """Failed attempts per event, and their reasons, from the activity stream."""
        per_event: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for _, fields in self.relay.redis.xrange(self.keys.activity):
            if fields[b"outcome"] == b"retry":
                per_event[fields[b"event_id"].decode()] += 1
                reasons[fields[b"reason"].decode()] += 1
        self.reasons = reasons
        return per_event

    def stop(self) -> None:
        self.relay.stop()
        self.server.stop()


@pytest.fixture
def outages(relay_env: dict[str, str], tmp_path: Path) -> Iterator[list[OutageRun]]:
    runs: list[OutageRun] = []
    try:
        for mode in ("503", "refuse"):
            runs.append(OutageRun(mode, relay_env, tmp_path / mode))
        yield runs
    finally:
        for run in runs:
            run.stop()


def test_a_minute_of_503s_or_refused_connections_loses_and_kills_nothing(
    outages: list[OutageRun],
) -> None:
    """60 s of 503s, and 60 s of refused connections, starting mid-run with more events
    arriving during them: afterwards every event is accepted once and none is dead."""
    for run in outages:
        run.enqueue(0, BEFORE)
    for run in outages:
        wait_until(lambda r=run: r.accepted() >= 60, 60, f"{run.mode}: delivery under way")
        run.break_for_a_minute()
        assert run.accepted() < BEFORE, f"{run.mode}: the outage began after the run ended"
    for run in outages:
        run.enqueue(BEFORE, DURING)
    total = BEFORE + DURING
    for run in outages:
        wait_until(
            lambda r=run: r.accepted() >= total and inbox_empty(r.relay),
            OUTAGE_S + 60,
            f"{run.mode}: every event after the outage",
        )
    for run in outages:
        counters = run.control.counters()
        ids = [e["id"] for e in run.control.events()]
        assert sorted(ids) == sorted(event_ulid(f"msg:{run.tag}-{i}") for i in range(total))
        assert counters["events_accepted"] == total
        assert run.relay.redis.xlen(run.keys.dlq) == 0, f"{run.mode}: dead letters"
        per_event = run.retries()
        # Events were stuck for the whole outage, retried again and again, never given up.
        assert len(per_event) >= total - run.accepted_before, run.mode
        assert max(per_event.values()) >= 4, (run.mode, per_event.most_common(3))
        assert max(per_event.values()) < 20, (run.mode, per_event.most_common(3))
        expected_reason = "http_503" if run.mode == "503" else "network"
        assert set(run.reasons) == {expected_reason}, (run.mode, run.reasons)
        assert all(p.poll() is None for p in run.relay.procs), f"{run.mode}: a process died"
    status = outages[0].control.counters()["status"]
    assert status.get("503", 0) > 0
