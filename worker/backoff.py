"""The retry schedule: exponential backoff with full jitter, capped; Retry-After wins."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_s(
    attempt: int,
    *,
    base_s: float = 1.0,
    cap_s: float = 300.0,
    retry_after_s: float | None = None,
    retry_after_cap_s: float = 900.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts failures, from 1).

    Half the exponential delay is fixed and half is jitter, so replicas that failed
    together spread out but nobody retries immediately. A server's ``Retry-After``
    is honoured when it asks for longer, up to its own cap.
    """
    exp = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    delay = exp / 2 + rand() * exp / 2
    if retry_after_s is not None and retry_after_s > delay:
        delay = min(retry_after_s, retry_after_cap_s)
    return delay
