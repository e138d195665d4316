"""Tests for the retry schedule."""

from __future__ import annotations

import pytest

from worker.backoff import backoff_s


@pytest.mark.parametrize(
    ("attempt", "low", "high"), [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (5, 8.0, 16.0)]
)
def test_bounds_follow_exponential(attempt: int, low: float, high: float) -> None:
    """With no jitter the delay is half the exponential; with full jitter it is all of it."""
    assert backoff_s(attempt, rand=lambda: 0.0) == low
    assert backoff_s(attempt, rand=lambda: 1.0) == high


def test_attempt_zero_treated_as_first() -> None:
    """An attempt below 1 does not shrink the delay below the first one."""
    assert backoff_s(0, rand=lambda: 1.0) == 1.0


def test_cap_limits_delay() -> None:
    """The exponential delay never exceeds the cap."""
    assert backoff_s(30, cap_s=300.0, rand=lambda: 1.0) == 300.0
    assert backoff_s(30, cap_s=300.0, rand=lambda: 0.0) == 150.0


def test_base_scales_delay() -> None:
    """The base multiplies the schedule."""
    assert backoff_s(3, base_s=2.0, rand=lambda: 1.0) == 8.0


def test_retry_after_wins_when_longer() -> None:
    """A server's Retry-After longer than the backoff is honoured."""
    assert backoff_s(1, retry_after_s=30.0, rand=lambda: 1.0) == 30.0


def test_retry_after_ignored_when_shorter() -> None:
    """A Retry-After shorter than the backoff does not shorten it."""
    assert backoff_s(5, retry_after_s=1.0, rand=lambda: 0.0) == 8.0


def test_retry_after_is_capped() -> None:
    """A huge Retry-After is capped by its own cap."""
    assert backoff_s(1, retry_after_s=86_400.0, retry_after_cap_s=900.0, rand=lambda: 0.0) == 900.0
