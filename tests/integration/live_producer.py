"""A producer thread that enqueues purchases one at a time, as a live app would."""

from __future__ import annotations

import threading
import time

import redis

from tests.integration.test_faults import purchases
from worker.producer import enqueue


class Producer(threading.Thread):
    """Enqueues ``{tag}-0``, ``{tag}-1``, … one per ``pause_s`` until stopped or ``limit``
    are acknowledged, noting which ones Redis acknowledged."""

    def __init__(
        self, url: str, prefix: str, *, tag: str, pause_s: float, limit: int | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url, socket_timeout=2)
        self.prefix = prefix
        self.tag = tag
        self.pause_s = pause_s
        self.limit = limit
        self.acknowledged: list[int] = []
        self.tried = 0
        self.failures = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            if self.limit is not None and len(self.acknowledged) >= self.limit:
                return
            i = self.tried
            self.tried += 1
            try:
                enqueue(self.client, purchases(i + 1, self.tag)[i], prefix=self.prefix)
            except redis.RedisError:
                self.failures += 1
                time.sleep(0.05)
                continue
            self.acknowledged.append(i)
            time.sleep(self.pause_s)
