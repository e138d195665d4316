"""Which drains are running: a sorted set of drain task ids scored by their live-until time.

A drain refreshes its own row while it works or listens and removes it when it ends, so
the beat can tell an idle relay that is listening (send nothing) from one whose drains
all stopped (start one), and the last drain to end can hand over to a successor without
a gap. A killed drain's row simply expires.
"""

from __future__ import annotations

import redis

from worker.keys import Keys

# Remove ARGV[1]; drop rows that expired before ARGV[2]; when no other drain is left,
# enter ARGV[3] (the successor about to be queued) until ARGV[4] and return 1.
_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if ARGV[3] ~= '' and redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
  return 1
end
return 0
"""


def live_key(keys: Keys) -> str:
    """Sorted set: drain task id -> Unix time until which it counts as running."""
    return keys.live_drains


def enter(client: redis.Redis, keys: Keys, drain_id: str, until: float) -> None:
    """Count ``drain_id`` as running until ``until`` (also the refresh)."""
    client.zadd(live_key(keys), {drain_id: until})


def leave(
    client: redis.Redis,
    keys: Keys,
    drain_id: str,
    now: float,
    successor: str = "",
    successor_until: float = 0.0,
) -> bool:
    """Stop counting ``drain_id``; when ``successor`` is given and no other drain is
    running, enter it (atomically, so of two drains ending together only one hands over)
    and return True: the caller must then queue it."""
    return bool(client.eval(_LEAVE, 1, live_key(keys), drain_id, now, successor, successor_until))


def running(client: redis.Redis, keys: Keys, now: float) -> int:
    """Drains counted as running at ``now`` (queued successors included)."""
    return int(client.zcount(live_key(keys), f"({now}", "+inf"))
