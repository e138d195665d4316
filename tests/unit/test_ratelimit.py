"""The shared request budget: its transit reserve, and what it reports as used."""

from __future__ import annotations

import fakeredis
import pytest

from worker.keys import Keys
from worker.ratelimit import SharedRateLimiter, budget_rps

KEYS = Keys("cio")


@pytest.mark.parametrize(
    ("max_rps", "budget"), [(1, 1), (2, 1), (18, 17), (20, 19), (22, 20), (100, 95), (1000, 950)]
)
def test_budget_keeps_five_percent_back_for_transit(max_rps: int, budget: int) -> None:
    assert budget_rps(max_rps) == budget


def test_acquire_stops_at_the_budget_within_one_second() -> None:
    """Every process shares one window: a second limiter on the same Redis sees the first's
    requests, and neither starts more than the budget in a second."""
    r = fakeredis.FakeRedis()
    a = SharedRateLimiter(r, KEYS, 20)
    b = SharedRateLimiter(r, KEYS, 20)
    taken = [a.acquire(deadline=0) or b.acquire(deadline=0) for _ in range(25)]
    assert taken.count(True) == 19


def test_used_share_counts_every_replica() -> None:
    r = fakeredis.FakeRedis()
    a = SharedRateLimiter(r, KEYS, 22)  # a budget of 20
    b = SharedRateLimiter(r, KEYS, 22)
    assert a.used_share() == 0.0
    for _ in range(5):
        assert a.acquire(deadline=float("inf"))
        assert b.acquire(deadline=float("inf"))
    assert a.used_share() == pytest.approx(0.5)
    assert b.used_share() == pytest.approx(0.5)
