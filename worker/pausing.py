"""The destination's pause switch, shared by every replica: set by Customer.io's answers
(401/403/3xx) or by a person (``cio-relay pause``, the console's Pause), cleared by
``cio-relay resume``, the console's Resume, or the credentials probe.

A pause a person made is never lifted by the probe: working credentials say nothing about
why someone stopped delivery.
"""

from __future__ import annotations

import redis

from worker.keys import Keys
from worker.redisconn import get_text

BY_HAND = "paused by hand: "


def reason(client: redis.Redis, keys: Keys) -> str | None:
    """Why delivery is paused, or None when it runs."""
    return get_text(client, keys.paused) or None


def pause_by_hand(client: redis.Redis, keys: Keys, who: str) -> bool:
    """Pause delivery for every replica; False when it was already paused (the existing
    reason is kept, so a credentials pause is not hidden behind a person's)."""
    return bool(client.set(keys.paused, BY_HAND + who, nx=True))


def is_by_hand(why: str | None) -> bool:
    """Whether a pause was made by a person (so only a person lifts it)."""
    return bool(why) and why.startswith(BY_HAND)  # type: ignore[union-attr]


def resume(client: redis.Redis, keys: Keys) -> str | None:
    """Clear the pause, whatever made it; returns the reason it had."""
    was = reason(client, keys)
    client.delete(keys.paused)
    return was
