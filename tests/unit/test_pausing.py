"""The pause switch: a person's pause is kept apart from Customer.io's, and only resume lifts it."""

from __future__ import annotations

import fakeredis

from worker import pausing
from worker.keys import Keys

KEYS = Keys("t")


def test_a_pause_by_hand_is_marked_and_kept_once() -> None:
    """The first pause wins and is recognised as a person's; a second changes nothing."""
    r = fakeredis.FakeRedis()
    assert pausing.pause_by_hand(r, KEYS, "cli:ada")
    assert not pausing.pause_by_hand(r, KEYS, "console:bob")
    why = pausing.reason(r, KEYS)
    assert why == "paused by hand: cli:ada" and pausing.is_by_hand(why)


def test_a_credentials_pause_is_not_by_hand() -> None:
    """A 401's pause is not hidden behind a person's, and is not marked as one."""
    r = fakeredis.FakeRedis()
    r.set(KEYS.paused, "401 from Customer.io")
    assert not pausing.pause_by_hand(r, KEYS, "cli:ada")
    assert not pausing.is_by_hand(pausing.reason(r, KEYS))
    assert not pausing.is_by_hand(None)


def test_resume_clears_any_pause_and_says_why_it_was() -> None:
    """Resume returns the old reason; afterwards delivery runs."""
    r = fakeredis.FakeRedis()
    pausing.pause_by_hand(r, KEYS, "cli:ada")
    assert pausing.resume(r, KEYS) == "paused by hand: cli:ada"
    assert pausing.reason(r, KEYS) is None and pausing.resume(r, KEYS) is None
