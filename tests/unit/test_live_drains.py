"""The live-drains set, the beat's decision to start a drain, and a drain's Flower result."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import fakeredis
from celery.signals import worker_shutting_down

from worker import live, tasks
from worker.beat import drain_needed
from worker.drain import DrainRun
from worker.inbox import ensure_group
from worker.keys import Keys
from worker.producer import enqueue

KEYS = Keys("cio")
NOW = 1_700_000_000.0


def test_a_drain_counts_as_running_until_its_time_lapses() -> None:
    r = fakeredis.FakeRedis()
    live.enter(r, KEYS, "d1", NOW + 10)
    assert live.running(r, KEYS, NOW) == 1
    assert live.running(r, KEYS, NOW + 10) == 0  # a killed drain stops counting


def test_only_the_last_drain_to_leave_hands_over() -> None:
    """Of two drains ending together, only the second finds nobody left and enters its
    successor; a drain leaving beside a live one hands over to nobody."""
    r = fakeredis.FakeRedis()
    live.enter(r, KEYS, "d1", NOW + 10)
    live.enter(r, KEYS, "d2", NOW + 10)
    assert not live.leave(r, KEYS, "d1", NOW, "s1", NOW + 2)
    assert live.leave(r, KEYS, "d2", NOW, "s2", NOW + 2)
    assert [m.decode() for m in r.zrange(live.live_key(KEYS), 0, -1)] == ["s2"]


def test_expired_rows_do_not_block_a_hand_over() -> None:
    """A killed drain's lapsed row neither counts as running nor stops the hand-over."""
    r = fakeredis.FakeRedis()
    live.enter(r, KEYS, "killed", NOW - 1)
    live.enter(r, KEYS, "d1", NOW + 10)
    assert live.leave(r, KEYS, "d1", NOW, "s1", NOW + 2)
    assert live.running(r, KEYS, NOW) == 1


def test_beat_starts_a_drain_only_when_none_runs_or_events_wait_unread() -> None:
    r = fakeredis.FakeRedis()
    ensure_group(r, KEYS)
    assert drain_needed(r, KEYS, NOW) == "no_drain_running"
    live.enter(r, KEYS, "listening", NOW + 10)
    assert drain_needed(r, KEYS, NOW) is None  # idle and listened to: send nothing
    enqueue(r, {"type": "track", "event": "A", "userId": "u1"})
    assert drain_needed(r, KEYS, NOW) == "unread_entries"


def test_a_drain_that_did_work_shows_its_counts_and_an_idle_one_says_idle() -> None:
    worked = DrainRun(Counter(delivered=3, skipped=1), busy_at_end=False, paused=None)
    assert tasks.drain_result(worked, 5.0) == {"delivered": 3, "skipped": 1}
    idle = DrainRun(Counter(), busy_at_end=False, paused=None)
    assert tasks.drain_result(idle, 30.0) == {"idle": True}
    paused = DrainRun(Counter(), busy_at_end=False, paused="401 from Customer.io")
    assert tasks.drain_result(paused, 30.0) == {"idle": True, "paused": "401 from Customer.io"}


def _wait_for_shutdown(seen: multiprocessing.synchronize.Event) -> None:
    for _ in range(200):
        if tasks.shutting_down():
            seen.set()
            return
        multiprocessing.get_context("fork").Event().wait(0.02)


def test_a_warm_shutdown_in_the_main_process_reaches_forked_pool_processes() -> None:
    """The flag set by the main process's worker_shutting_down signal is seen by a
    process forked before it was set, as prefork pool processes are."""
    ctx = multiprocessing.get_context("fork")
    seen = ctx.Event()
    child = ctx.Process(target=_wait_for_shutdown, args=(seen,))
    child.start()
    try:
        assert not tasks.shutting_down()
        worker_shutting_down.send(sender="w@h", sig="SIGTERM", how="Warm", exitcode=0)
        child.join(10)
        assert seen.is_set()
    finally:
        tasks._shutdown_flag[0] = 0
        if child.is_alive():
            child.kill()
