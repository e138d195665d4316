"""Adds the requests' events to the inbox, many requests to one Redis script call.

Each request waits until Redis has acknowledged its entries. While one write is in flight
the requests that arrive queue up, and the next write carries all of them: under load a
round trip serves dozens of requests, at rest each request gets its own. The write is one
``EVAL`` (``redisconn.add_to_stream_async``) that adds every entry and answers the inbox
length, which the backpressure check uses; a script is atomic and Redis refuses it at its
first write when it refuses writes (``OOM``, ``MISCONF``), so no request is ever left half
stored and unreported. With ``CIO_REDIS_MIN_REPLICAS`` a ``WAIT`` follows on the same
connection, and the group's requests are answered only once that many replicas hold their
entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import redis.exceptions

from worker.redisconn import Durability, add_to_stream_async, describe_refusal

MAX_GROUP_ENTRIES = 5_000


class StoreFailed(Exception):
    """Raised when Redis did not acknowledge a request's entries; nothing can be promised."""


@dataclass(slots=True)
class _Pending:
    fields: Sequence[dict[str, bytes | str]]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class InboxWriter:
    """One per process: queues requests' entries and writes them in grouped transactions."""

    def __init__(
        self, client: aioredis.Redis, inbox: str, durability: Durability | None = None
    ) -> None:
        self._redis = client
        self._inbox = inbox
        self._durability = durability or Durability()
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.backlog = 0
        self.backlog_read_at = 0.0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Write what is queued, then stop (requests in flight still get their answer)."""
        while self._queue:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def add(self, fields: Sequence[dict[str, bytes | str]]) -> None:
        """Store these entries; returns once Redis acknowledged them, else StoreFailed."""
        pending = _Pending(fields)
        self._queue.append(pending)
        self._wakeup.set()
        await pending.done

    async def read_backlog(self) -> int:
        """The inbox length now (one XLEN), for when no write has refreshed it lately."""
        self.backlog = int(await self._redis.xlen(self._inbox))
        self.backlog_read_at = time.monotonic()
        return self.backlog

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                group = self._take()
                await self._write(group)

    def _take(self) -> list[_Pending]:
        group: list[_Pending] = []
        count = 0
        while self._queue and (
            not group or count + len(self._queue[0].fields) <= MAX_GROUP_ENTRIES
        ):
            item = self._queue.popleft()
            group.append(item)
            count += len(item.fields)
        return group

    async def _write(self, group: list[_Pending]) -> None:
        entries = [entry for pending in group for entry in pending.fields]
        try:
            length = await add_to_stream_async(self._redis, self._inbox, entries, self._durability)
        except (TimeoutError, redis.exceptions.RedisError, OSError) as exc:
            error = StoreFailed(describe_refusal(exc))
            for pending in group:
                if not pending.done.done():
                    pending.done.set_exception(error)
            return
        self.backlog = length
        self.backlog_read_at = time.monotonic()
        for pending in group:
            if not pending.done.done():
                pending.done.set_result(None)
