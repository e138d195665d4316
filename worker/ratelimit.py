"""One request budget in Redis shared by every replica, and the 429 pause they all obey.

The budget uses the ``limits`` library's moving window (a Lua script over a Redis list):
at most ``budget_rps(max_rps)`` acquisitions in any rolling second, across all processes.
The storage shares the handed client's connection pool, so behind Sentinel it follows the
primary through a failover like every other Redis user (no second Sentinel client).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from worker.keys import Keys

_LIMITER_KEY = "track"
# A request reaches Customer.io a little after it takes its slot, and that delay varies
# with scheduling: two requests 1.001 s apart here can land 0.99 s apart there. Keeping
# 5% of the budget back keeps Customer.io's own one-second window at or under max_rps.
TRANSIT_RESERVE = 0.05
# Keep the later of two throttle deadlines, so a short Retry-After never cuts a long one.
_EXTEND_THROTTLE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if wanted > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', math.floor(wanted * 1000) + 1000)
  return 1
end
return 0
"""


def budget_rps(max_rps: int) -> int:
    """Requests started in any rolling second for a budget of ``max_rps``: 95 of 100."""
    return max(1, max_rps - math.ceil(max_rps * TRANSIT_RESERVE))


class SharedRateLimiter:
    """Blocks until the shared budget allows one more request, or a deadline passes."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        max_rps: int,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        storage = RedisStorage(
            "redis://", connection_pool=client.connection_pool, key_prefix=keys.ratelimit_prefix
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(budget_rps(max_rps))
        self._redis = client
        self._keys = keys
        self._clock = clock
        self._sleep = sleep
        self._extend = client.register_script(_EXTEND_THROTTLE)

    def acquire(self, deadline: float) -> bool:
        """Take one request from the budget; False if the deadline or a throttle comes first."""
        while True:
            now = self._clock()
            wait = self.throttled_for()
            if wait > 0:
                if now + wait > deadline:
                    return False
                self._sleep(wait)
                continue
            if self._limiter.hit(self._item, _LIMITER_KEY):
                return True
            stats = self._limiter.get_window_stats(self._item, _LIMITER_KEY)
            pause = min(max(stats.reset_time - now, 0.001), 0.05)
            if now + pause > deadline:
                return False
            self._sleep(pause)

    def used_share(self) -> float:
        """The share of the budget taken in the last second, by every replica (0 to 1)."""
        stats = self._limiter.get_window_stats(self._item, _LIMITER_KEY)
        return 1.0 - stats.remaining / self._item.amount

    def throttle(self, seconds: float) -> None:
        """Stop every replica from sending for ``seconds`` (after a 429)."""
        self._extend(keys=[self._keys.throttled_until], args=[self._clock() + seconds])

    def throttled_for(self) -> float:
        """Seconds left in the current 429 pause, 0 when none."""
        raw = self._redis.get(self._keys.throttled_until)
        return max(0.0, float(raw) - self._clock()) if raw else 0.0
