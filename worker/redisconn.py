"""The Redis client every part of the relay is handed (never created deep inside a stage)."""

from __future__ import annotations

import redis

from worker.settings import Settings


def connect(settings: Settings) -> redis.Redis:
    """A client for ``CIO_REDIS_URL`` with bounded timeouts and health checks."""
    return redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=15,
        retry_on_timeout=True,
    )


def as_text(value: bytes | str) -> str:
    """A Redis reply (bytes from a client without decode_responses) as text."""
    return value.decode() if isinstance(value, bytes) else value
