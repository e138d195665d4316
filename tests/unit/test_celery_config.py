"""The Celery configuration every process shares."""

from __future__ import annotations

import os

from worker.app import celery_config
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
