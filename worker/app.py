"""The Celery application: ``celery -A worker.app worker|beat|flower``.

Settings are read once here; a bad one stops the process with one line naming it.
"""

from __future__ import annotations

import sys

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from worker.errors import ConfigError
from worker.logging import configure_logging
from worker.redisconn import broker_transport_options, broker_url
from worker.settings import Settings, get_settings
from worker.sizing import default_concurrency


def _settings_or_exit() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        sys.stderr.write(f"cio-relay: {exc}\n")
        raise SystemExit(2) from None


def drain_expires_s(settings: Settings) -> float:
    """How long a queued drain stays worth running: two ticks, at least 2 s. A drain
    nobody picked up by then is stale, and the next tick or recruit replaces it."""
    return max(2.0, settings.tick_s * 2)


def longest_drain_s(settings: Settings) -> float:
    """The longest one drain runs: its work budget, or its idle listen when longer."""
    return max(settings.drain_budget_s, settings.idle_listen_s)


def celery_config(settings: Settings) -> dict[str, object]:
    """Celery's configuration: JSON only, late acks, prefetch 1, no results kept."""
    return {
        # CIO_REDIS_URL, or kombu's sentinel:// transport when CIO_REDIS_SENTINELS is set.
        "broker_url": broker_url(settings),
        "broker_transport_options": broker_transport_options(settings),
        "broker_connection_retry_on_startup": True,
        # A broker command Redis refuses (OOM, MISCONF: kombu's ack is a MULTI) reconnects
        # the consumer and tries again instead of ending the worker as unrecoverable.
        "broker_channel_error_retry": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Without --concurrency (compose, a bare `celery worker`): three per core.
        "worker_concurrency": default_concurrency(),
        "task_ignore_result": True,
        "result_backend": None,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        # A drain works for the budget or listens for CIO_IDLE_LISTEN_S, whichever is longer.
        "task_soft_time_limit": longest_drain_s(settings) + 60,
        "task_time_limit": longest_drain_s(settings) + 90,
        "task_default_queue": f"{settings.redis_prefix}.relay",
        # The drain tick queues a drain only when none is running or events wait unread.
        "beat_scheduler": "worker.beat:RelayScheduler",
        "beat_schedule": {
            "drain-inbox": {
                "task": "relay.drain",
                "schedule": settings.tick_s,
                "options": {"expires": drain_expires_s(settings)},
            },
        },
        "timezone": "UTC",
    }


settings = _settings_or_exit()
app = Celery("cio_relay", include=["worker.tasks"])
app.conf.update(celery_config(settings))


def _secret_values(s: Settings) -> list[str | None]:
    return [
        s.api_key.get_secret_value() if s.api_key else None,
        s.flower_password.get_secret_value() if s.flower_password else None,
    ]


@after_setup_logger.connect
@after_setup_task_logger.connect
def _setup_logging(**_: object) -> None:
    configure_logging(settings.log_level, settings.log_format, _secret_values(settings))


configure_logging(settings.log_level, settings.log_format, _secret_values(settings))
