"""Beat's scheduler for the relay: the drain tick sends a task only when one is needed.

Beat still wakes every ``CIO_TICK_S``, but instead of queueing ``relay.drain`` each time
(one Flower row a second on an idle relay) it looks at Redis and queues one only when no
drain is running (every drain ended or its process died) or events wait unread (the
running drains do not keep up). A listening drain covers an idle inbox, so an idle
relay's beat sends nothing.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import structlog
from celery.beat import PersistentScheduler
from celery.utils import uuid

from worker import live
from worker.inbox import Inbox
from worker.keys import Keys
from worker.redisconn import connect

log = structlog.get_logger("cio_relay.beat")

DRAIN_TASK = "relay.drain"


def drain_needed(client: redis.Redis, keys: Keys, now: float) -> str | None:
    """Why a drain should be started now, or None when the running ones suffice."""
    if live.running(client, keys, now) == 0:
        return "no_drain_running"
    if Inbox(client, keys, consumer="beat").depth()["unread"] > 0:
        return "unread_entries"
    return None


class RelayScheduler(PersistentScheduler):
    """``PersistentScheduler`` (the ``-s`` schedule file works as before) whose drain
    entry is sent only when :func:`drain_needed` says so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._redis: redis.Redis | None = None
        super().__init__(*args, **kwargs)

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        if entry.task != DRAIN_TASK:
            super().apply_entry(entry, producer=producer)
            return
        from worker.app import drain_expires_s, settings

        keys = Keys(settings.redis_prefix)
        now = time.time()
        try:
            if self._redis is None:
                self._redis = connect(settings)
            reason = drain_needed(self._redis, keys, now)
            if reason is None:
                return
            task_id = uuid()
            # Counted as running until it expires, so the next ticks wait for it.
            live.enter(self._redis, keys, task_id, now + drain_expires_s(settings))
        except redis.RedisError as exc:  # cannot look: tick as before
            reason, task_id = f"redis_error:{type(exc).__name__}", uuid()
        try:
            self.app.send_task(
                DRAIN_TASK,
                task_id=task_id,
                producer=producer,
                headers={"celery_beat_task": True},
                **entry.options,
            )
        except Exception as exc:
            log.error("drain_not_sent", error=type(exc).__name__)
        else:
            log.debug("drain_started", reason=reason)
