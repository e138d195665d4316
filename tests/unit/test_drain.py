"""Tests for one drain cycle against fakeredis and an in-process emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from pydantic import SecretStr

from worker.client import TrackClient
from worker.drain import DrainConfig, Drainer
from worker.emulator.client import EmulatorClient
from worker.emulator.server import EmulatorServer
from worker.keys import CONSUMER_GROUP, Keys
from worker.prepare import Policy
from worker.producer import enqueue, enqueue_many
from worker.ratelimit import SharedRateLimiter
from worker.workflow.model import Workflow
from worker.workflow.store import WorkflowStore

KEYS = Keys("cio")
START = 1_700_000_000.0
TS = "2023-11-14T22:00:00Z"


class Clock:
    """A clock tests move by hand; sleeping advances it instead of waiting."""

    def __init__(self, now: float = START, tick_s: float = 0.0) -> None:
        self.now = now
        self.tick_s = tick_s

    def __call__(self) -> float:
        self.now += self.tick_s
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(port=0, site_id="site", api_key="key").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def emu(emulator: EmulatorServer) -> EmulatorClient:
    return EmulatorClient(emulator.url)


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _drainer(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, clock: Clock, **config: Any
) -> Drainer:
    track = TrackClient(emulator.url, "site", SecretStr("key"), clock=clock)
    limiter = SharedRateLimiter(r, KEYS, 1000, clock=clock, sleep=clock.sleep)
    WorkflowStore(r, KEYS).replace(Workflow(default="on"))
    config_ = DrainConfig(**config)
    return Drainer(r, KEYS, track, limiter, Policy(), config_, "c1", clock=clock, sleep=clock.sleep)


def _track(name: str, email: str | None = "ada@example.com", **kw: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "track", "event": name, "timestamp": TS, "messageId": name}
    if email:
        event["context"] = {"traits": {"email": email}}
    return {**event, **kw}


def _run(drainer: Drainer) -> Any:
    return drainer.process(drainer.inbox.read_new(100))


def _retry_due(drainer: Drainer, clock: Clock) -> Any:
    return drainer.process(drainer.inbox.claim_due(clock.now, 100))


def _names(emu: EmulatorClient) -> list[str]:
    return sorted(e["name"] for e in emu.events())


def _dlq(r: fakeredis.FakeRedis) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in r.xrange(KEYS.dlq)]


def _pending(r: fakeredis.FakeRedis) -> int:
    return int(r.xpending(KEYS.inbox, CONSUMER_GROUP)["pending"])


def test_delivers_and_empties_inbox(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient, clock: Clock
) -> None:
    """Valid events reach Customer.io and leave the inbox; nothing stays pending."""
    drainer = _drainer(r, emulator, clock)
    enqueue_many(r, [_track("A"), _track("B"), _track("C")])
    counts = _run(drainer)
    assert counts["delivered"] == 3
    assert _names(emu) == ["A", "B", "C"]
    assert r.xlen(KEYS.inbox) == 0
    assert _pending(r) == 0


def test_each_batch_is_counted_with_its_entries(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, clock: Clock
) -> None:
    """The shared counters say how many batches ran and how many entries they held."""
    drainer = _drainer(r, emulator, clock)
    enqueue_many(r, [_track("A"), _track("B"), _track("C")])
    drainer.process(drainer.inbox.read_new(2))
    drainer.process(drainer.inbox.read_new(2))
    counts = r.hgetall(KEYS.counters)
    assert (counts[b"batches"], counts[b"batch_entries"]) == (b"2", b"3")


def test_bad_events_dead_lettered_with_reason_and_raw(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient, clock: Clock
) -> None:
    """Unreadable or unidentifiable events go to the DLQ with their reason and raw bytes."""
    drainer = _drainer(r, emulator, clock)
    r.xadd(KEYS.inbox, {"event": b"{broken"})
    enqueue(r, _track("NoOne", email=None, userId="u1"))
    enqueue(r, _track("Good"))
    _run(drainer)
    assert _names(emu) == ["Good"]
    dlq = _dlq(r)
    assert [(d["reason"], d["raw"][:7]) for d in dlq] == [
        ("invalid_json", "{broken"),
        ("missing_identifier", '{"type"'),
    ]
    assert json.loads(dlq[1]["raw"])["event"] == "NoOne"
    assert r.xlen(KEYS.inbox) == 0


def test_drain_with_budget_delivers_everything(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient
) -> None:
    """A drain cycle with a small budget reads and delivers what is waiting, then stops."""
    ticking = Clock(tick_s=0.03)
    drainer = _drainer(r, emulator, ticking, budget_s=0.5)
    enqueue_many(r, [_track(f"E{i}") for i in range(5)])
    counts = drainer.drain().counts
    assert counts["delivered"] == 5
    assert len(emu.events()) == 5
    assert r.xlen(KEYS.inbox) == 0


def test_drain_takes_back_what_an_earlier_failed_drain_of_its_own_left(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient
) -> None:
    """With one worker process nobody else would re-claim its entries: it does so itself,
    counting the failed drain as an attempt."""
    ticking = Clock(tick_s=0.03)
    drainer = _drainer(r, emulator, ticking, budget_s=0.5, reclaim_idle_s=0.05)
    enqueue_many(r, [_track(f"E{i}") for i in range(3)])
    left = drainer.inbox.read_new(100)  # a drain that read these, then failed
    assert len(left) == 3 and _pending(r) == 3
    time.sleep(0.1)  # Redis measures idle time by its own clock
    counts = drainer.drain().counts
    assert counts["delivered"] == 3
    assert _names(emu) == ["E0", "E1", "E2"]
    assert _pending(r) == 0


def test_503_parks_entries_then_delivers_after_due(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient, clock: Clock
) -> None:
    """A 503 parks entries in the retry set, still pending; once due they are delivered."""
    drainer = _drainer(r, emulator, clock)
    ids, _ = enqueue_many(r, [_track("A"), _track("B")])
    emu.set_faults(outage="503")
    assert _run(drainer)["retry"] == 2
    due = dict(r.zrange(KEYS.retry_due, 0, -1, withscores=True))
    assert sorted(k.decode() for k in due) == sorted(ids)
    assert all(score > clock.now for score in due.values())
    assert _pending(r) == 2
    assert r.xlen(KEYS.dlq) == 0

    emu.set_faults(outage="off")
    assert _retry_due(drainer, clock) == {}  # not due yet
    clock.now = max(due.values()) + 0.001
    assert _retry_due(drainer, clock)["delivered"] == 2
    assert _names(emu) == ["A", "B"]
    assert (r.xlen(KEYS.inbox), _pending(r), r.zcard(KEYS.retry_due)) == (0, 0, 0)
    assert r.hlen(KEYS.attempts) == 0


def test_401_pauses_without_dead_letters(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient, clock: Clock
) -> None:
    """Refused credentials pause delivery and keep every entry; nothing is dead-lettered."""
    drainer = _drainer(r, emulator, clock)
    enqueue_many(r, [_track("A"), _track("B")])
    emu.set_faults(unauthorized=True)
    _run(drainer)
    assert r.get(KEYS.paused)
    assert drainer.paused_reason() is not None
    assert r.xlen(KEYS.dlq) == 0
    assert r.xlen(KEYS.inbox) == 2
    assert _pending(r) == 2


def test_paused_drain_sends_nothing(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient, clock: Clock
) -> None:
    """While paused a drain cycle reads nothing from the inbox."""
    drainer = _drainer(r, emulator, clock, budget_s=0.5)
    drainer.pause("test")
    enqueue(r, _track("A"))
    emu.set_faults(unauthorized=True)
    run = drainer.drain()
    assert run.counts == {} and run.paused == "test"
    assert emu.events() == []
    assert r.xlen(KEYS.inbox) == 1


def test_poison_dead_letters_only_that_event(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient, clock: Clock
) -> None:
    """A request refused because of one poison operation dead-letters only that event."""
    drainer = _drainer(r, emulator, clock)
    emu.set_faults(poison="POISON-MARK")
    events = [_track("A"), _track("B", properties={"x": "POISON-MARK"}), _track("C"), _track("D")]
    enqueue_many(r, events)
    counts = _run(drainer)
    assert (counts["delivered"], counts["dead"]) == (3, 1)
    assert _names(emu) == ["A", "C", "D"]
    [dead] = _dlq(r)
    assert dead["reason"] == "rejected"
    assert json.loads(dead["raw"])["event"] == "B"
    assert dead["http_status"] == "400"
    assert r.xlen(KEYS.inbox) == 0


def test_retries_exhausted_after_max_attempts(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient, clock: Clock
) -> None:
    """An entry that keeps failing is dead-lettered as retries_exhausted after max_attempts."""
    drainer = _drainer(r, emulator, clock, max_attempts=2)
    enqueue(r, _track("A"))
    emu.set_faults(outage="503")
    assert _run(drainer)["retry"] == 1
    clock.now += 10
    assert _retry_due(drainer, clock)["dead"] == 1
    [dead] = _dlq(r)
    assert (dead["reason"], dead["attempts"], dead["http_status"]) == (
        "retries_exhausted",
        "2",
        "503",
    )
    assert (r.xlen(KEYS.inbox), _pending(r), r.zcard(KEYS.retry_due)) == (0, 0, 0)
    assert r.hlen(KEYS.attempts) == 0


def test_identify_remembers_anonymous_id_with_ttl(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient, clock: Clock
) -> None:
    """An identify stores its anonymous id's identifier with the configured TTL."""
    drainer = _drainer(r, emulator, clock, identity_ttl_s=3600)
    identify = {
        "type": "identify",
        "anonymousId": "anon-1",
        "traits": {"email": "ada@example.com"},
        "timestamp": TS,
    }
    enqueue(r, identify)
    _run(drainer)
    key = KEYS.identity("anon", "anon-1")
    assert r.get(key) == b"ada@example.com"
    assert 0 < r.ttl(key) <= 3600


def test_remembered_identity_attributes_later_batch(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient, clock: Clock
) -> None:
    """An anonymous event in a later batch is sent for the person remembered for its id."""
    drainer = _drainer(r, emulator, clock)
    r.set(KEYS.identity("anon", "anon-1"), "bo@example.com")
    enqueue(r, _track("Later", email=None, anonymousId="anon-1"))
    assert _run(drainer)["delivered"] == 1
    [sent] = emu.requests()
    assert sent["path"] == "/api/v2/batch"


def test_a_full_read_recruits_one_more_drain(
    r: fakeredis.FakeRedis, emulator: EmulatorServer
) -> None:
    """A read that comes back full means a backlog: the drain asks for one more drain,
    once, however many full batches follow."""
    ticking = Clock(tick_s=0.01)
    drainer = _drainer(r, emulator, ticking, budget_s=0.5, batch_size=2)
    enqueue_many(r, [_track(f"E{i}") for i in range(7)])
    recruited: list[int] = []
    counts = drainer.drain(recruit=lambda: recruited.append(r.xlen(KEYS.inbox))).counts
    assert counts["delivered"] == 7
    assert recruited == [7]  # asked at the first full read, before it was delivered


def test_partial_reads_recruit_nobody(r: fakeredis.FakeRedis, emulator: EmulatorServer) -> None:
    """No backlog, no extra drains: reads shorter than a batch never recruit."""
    ticking = Clock(tick_s=0.03)
    drainer = _drainer(r, emulator, ticking, budget_s=0.5, batch_size=10)
    enqueue_many(r, [_track(f"E{i}") for i in range(9)])
    recruited: list[str] = []
    assert drainer.drain(recruit=lambda: recruited.append("asked")).counts["delivered"] == 9
    assert recruited == []


def _lingering_drainer(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, sleep: Any, busy: int
) -> Drainer:
    """A drainer whose request budget (20/s) already has ``busy`` requests in its window."""
    ticking = Clock(tick_s=0.01)
    track = TrackClient(emulator.url, "site", SecretStr("key"), clock=ticking)
    limiter = SharedRateLimiter(r, KEYS, 22)
    for _ in range(busy):
        assert limiter.acquire(deadline=float("inf"))
    WorkflowStore(r, KEYS).replace(Workflow(default="on"))
    config = DrainConfig(budget_s=0.3, linger_s=0.1)
    return Drainer(r, KEYS, track, limiter, Policy(), config, "c1", clock=ticking, sleep=sleep)


def _request_sizes(emu: EmulatorClient) -> list[int]:
    return [len(q["body"]["batch"]) for q in emu.requests()]


def test_short_read_lingers_for_more_while_the_budget_is_busy(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient
) -> None:
    """With over half the budget used, a short read waits ``linger_s`` and takes what
    arrived meanwhile into the same request."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:  # events arriving while the first batch lingers
            enqueue_many(r, [_track("Late1"), _track("Late2")])

    drainer = _lingering_drainer(r, emulator, sleep, busy=11)
    enqueue_many(r, [_track(f"E{i}") for i in range(3)])
    assert drainer.drain().counts["delivered"] == 5
    assert slept[0] == pytest.approx(0.1)
    assert _request_sizes(emu) == [5]


def test_short_read_goes_at_once_while_the_budget_is_quiet(
    r: fakeredis.FakeRedis, emulator: EmulatorServer, emu: EmulatorClient
) -> None:
    slept: list[float] = []
    drainer = _lingering_drainer(r, emulator, slept.append, busy=9)
    enqueue_many(r, [_track(f"E{i}") for i in range(3)])
    assert drainer.drain().counts["delivered"] == 3
    assert slept == []
    assert _request_sizes(emu) == [3]


def test_an_idle_drain_listens_for_its_listen_time_then_reports_nothing(
    r: fakeredis.FakeRedis, emulator: EmulatorServer
) -> None:
    """With nothing to read, a drain keeps reading for ``listen_s`` (past its budget),
    beats its heartbeat at every step, and ends with no counts and no pending work."""
    ticking = Clock(tick_s=0.25)
    drainer = _drainer(r, emulator, ticking, budget_s=0.5)
    beats: list[float] = []
    run = drainer.drain(listen_s=2.0, alive=beats.append)
    assert run.counts == {} and not run.busy_at_end and run.paused is None
    assert beats[-1] - beats[0] >= 1.5  # listened well past the 0.5 s budget
    assert ticking.now - START < 2.5


def test_a_listening_drain_works_one_budget_from_its_first_event(
    r: fakeredis.FakeRedis, emulator: EmulatorServer
) -> None:
    """An event arriving while a drain listens is read by that drain, which then works
    for its budget and ends, rather than listening out its whole listen time."""
    ticking = Clock(tick_s=0.1)
    drainer = _drainer(r, emulator, ticking, budget_s=0.5)
    arrived: list[float] = []

    def alive(now: float) -> None:
        if now - START > 1.0 and not arrived:
            arrived.append(now)
            enqueue(r, _track("Late"))

    run = drainer.drain(listen_s=30.0, alive=alive)
    assert run.counts["delivered"] == 1
    assert ticking.now - arrived[0] < 1.5  # about the budget after it, not 29 s


def test_stop_ends_a_listening_drain_at_the_next_step(
    r: fakeredis.FakeRedis, emulator: EmulatorServer
) -> None:
    """A warm shutdown (``stop`` turning true) ends a listening drain at its next step."""
    ticking = Clock(tick_s=0.1)
    drainer = _drainer(r, emulator, ticking, budget_s=0.5)
    steps: list[float] = []
    run = drainer.drain(listen_s=30.0, stop=lambda: len(steps) >= 3, alive=steps.append)
    assert run.counts == {}
    assert len(steps) == 3 and ticking.now - START < 1.0


def test_a_drain_whose_last_read_found_events_says_so(
    r: fakeredis.FakeRedis, emulator: EmulatorServer
) -> None:
    """Events still arriving at the end of a drain (its last read found some) mark it
    busy at the end, so the task hands over to a successor at once."""
    ticking = Clock(tick_s=0.1)
    drainer = _drainer(r, emulator, ticking, budget_s=3.0)
    run = drainer.drain(alive=lambda now: enqueue(r, _track(f"E{now}")))
    assert run.counts["delivered"] >= 2 and run.busy_at_end


def test_a_read_of_events_that_waited_recruits_one_more_drain(
    r: fakeredis.FakeRedis, emulator: EmulatorServer
) -> None:
    """New entries that waited in the inbox over 0.1 s mean the running drains do not
    read arrivals at once: the drain asks for one more, even with a short read."""
    ticking = Clock(now=time.time() + 0.5, tick_s=0.01)  # the entries waited 0.5 s
    drainer = _drainer(r, emulator, ticking, budget_s=0.5, batch_size=10)
    enqueue_many(r, [_track(f"E{i}") for i in range(3)])
    recruited: list[str] = []
    assert drainer.drain(recruit=lambda: recruited.append("asked")).counts["delivered"] == 3
    assert recruited == ["asked"]
