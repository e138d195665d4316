"""Celery tasks: thin wrappers that build the relay once per process and run a stage."""

from __future__ import annotations

import os
import socket

import structlog
from celery.signals import worker_init
from kombu.exceptions import OperationalError

from worker.app import app, drain_expires_s, settings
from worker.client import TrackClient
from worker.drain import DrainConfig, Drainer
from worker.errors import ConfigError, WorkflowError
from worker.keys import Keys
from worker.prepare import Policy
from worker.ratelimit import SharedRateLimiter
from worker.redisconn import connect
from worker.workflow.loader import describe_error, load_workflow_file
from worker.workflow.store import WorkflowStore

log = structlog.get_logger("cio_relay.tasks")

_drainer: tuple[int, Drainer] | None = None


def build_drainer() -> Drainer:
    """The relay's stages wired to this process's Redis client and HTTP session."""
    site_id, api_key = settings.require_credentials()
    client = connect(settings)
    keys = Keys(settings.redis_prefix)
    track = TrackClient(
        settings.base_url,
        site_id,
        api_key,
        connect_timeout_s=settings.connect_timeout_s,
        read_timeout_s=settings.read_timeout_s,
    )
    return Drainer(
        client,
        keys,
        track,
        SharedRateLimiter(client, keys, settings.max_rps),
        Policy(
            identify_by=settings.identify_by,
            unidentified=settings.unidentified,
            page_overflow=settings.page_name_overflow,
            max_event_bytes=settings.max_event_bytes,
        ),
        DrainConfig.from_settings(settings),
        consumer=f"{socket.gethostname()}:{os.getpid()}",
    )


def drainer() -> Drainer:
    """This process's Drainer, built after the fork (a Redis connection is never shared)."""
    global _drainer
    if _drainer is None or _drainer[0] != os.getpid():
        _drainer = (os.getpid(), build_drainer())
    return _drainer[1]


def seed_workflow() -> bool:
    """Store ``CIO_WORKFLOW_FILE`` as the live workflow unless one is already live."""
    if settings.workflow_file is None:
        return False
    path = settings.workflow_file
    try:
        workflow = load_workflow_file(path)
    except WorkflowError as exc:
        raise ConfigError(f"CIO_WORKFLOW_FILE {describe_error(str(path), exc)}") from None
    seeded = WorkflowStore(connect(settings), Keys(settings.redis_prefix)).seed(workflow)
    if seeded:
        log.info("workflow_seeded", file=str(path), events=len(workflow.events))
    return seeded


@worker_init.connect
def _check_at_start(**_: object) -> None:
    """Refuse to start a worker with missing credentials or a bad workflow file."""
    try:
        settings.require_credentials()
        seed_workflow()
    except ConfigError as exc:
        import sys

        sys.stderr.write(f"cio-relay: {exc}\n")
        raise SystemExit(2) from None


@app.task(name="relay.drain", ignore_result=True)
def drain() -> dict[str, int]:
    """Deliver what is waiting in the inbox for up to the drain budget; returns counts."""
    try:
        counts = drainer().drain(recruit=recruit_drain)
    except ConfigError as exc:
        log.error("config_error", error=str(exc))
        raise
    return dict(counts)


def recruit_drain() -> None:
    """Queue one more drain for an idle worker process: the inbox has a backlog."""
    try:
        drain.apply_async(expires=drain_expires_s(settings))
    except OperationalError as exc:  # the drain goes on; the beat's ticks still come
        log.warning("recruit_failed", error=type(exc).__name__)
    else:
        log.debug("drain_recruited")
