"""The Celery configuration every process shares."""

from __future__ import annotations

import logging
import os

from worker.app import celery_config
from worker.logging import CELERY_PER_TASK_LOGGERS, configure_logging
from worker.settings import Settings


def test_workers_default_to_three_processes_per_core() -> None:
    """A bare `celery worker` (compose, any host without --concurrency) runs three per
    core; an explicit --concurrency still wins, as Celery's command line overrides config."""
    config = celery_config(Settings())
    assert config["worker_concurrency"] == 3 * len(os.sched_getaffinity(0))


def test_only_json_is_accepted_and_ticks_expire() -> None:
    config = celery_config(Settings(tick_s=0.5))
    assert config["accept_content"] == ["json"]
    schedule = config["beat_schedule"]
    assert isinstance(schedule, dict)
    assert schedule["drain-inbox"]["options"] == {"expires": 2.0}


def test_beat_uses_the_relay_scheduler_and_drains_may_listen_past_their_budget() -> None:
    """Beat sends a drain only when needed (worker.beat), and the time limits leave room
    for a drain that listens ``CIO_IDLE_LISTEN_S`` on an idle inbox."""
    config = celery_config(Settings(drain_budget_s=5, idle_listen_s=30))
    assert config["beat_scheduler"] == "worker.beat:RelayScheduler"
    assert config["task_soft_time_limit"] == 90
    assert config["task_time_limit"] == 120


def test_celery_per_task_lines_are_quiet_at_info_and_back_at_debug() -> None:
    """At INFO, Celery's received/succeeded line per drain is silenced (drains that did
    work log their own); at DEBUG they show again."""
    try:
        configure_logging("INFO")
        for name in CELERY_PER_TASK_LOGGERS:
            assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger("cio_relay.tasks").isEnabledFor(logging.INFO)
        configure_logging("DEBUG")
        for name in CELERY_PER_TASK_LOGGERS:
            assert logging.getLogger(name).isEnabledFor(logging.INFO)
    finally:
        configure_logging("INFO")
