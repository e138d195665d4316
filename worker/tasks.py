"""Celery tasks: thin wrappers that build the relay once per process and run a stage."""

from __future__ import annotations

import mmap
import os
import socket
import time
from dataclasses import dataclass

import redis
import structlog
from celery import Task
from celery.signals import worker_init, worker_shutting_down
from celery.utils import uuid
from kombu.exceptions import OperationalError

from worker import live
from worker.app import app, drain_expires_s, settings
from worker.client import TrackClient
from worker.drain import DrainConfig, Drainer, DrainRun
from worker.errors import ConfigError, WorkflowError
from worker.keys import Keys
from worker.prepare import Policy
from worker.ratelimit import SharedRateLimiter
from worker.redisconn import connect
from worker.workflow.loader import describe_error, load_workflow_file
from worker.workflow.store import WorkflowStore

log = structlog.get_logger("cio_relay.tasks")

# A drain counts as running for this long after its last heartbeat; it refreshes at
# half of it, so only a killed drain (or one stuck in a very slow batch) lapses.
LIVE_FOR_S = 10.0


@dataclass(frozen=True, slots=True)
class RelayProcess:
    """This worker process's Drainer with the Redis client and keys it uses."""

    pid: int
    drainer: Drainer
    client: redis.Redis
    keys: Keys


_relay: RelayProcess | None = None


def build_drainer(client: redis.Redis, keys: Keys) -> Drainer:
    """The relay's stages wired to this process's Redis client and HTTP session."""
    site_id, api_key = settings.require_credentials()
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
        Policy.from_settings(settings),
        DrainConfig.from_settings(settings),
        consumer=f"{socket.gethostname()}:{os.getpid()}",
    )


def relay_process() -> RelayProcess:
    """This process's Drainer, built after the fork (a Redis connection is never shared)."""
    global _relay
    if _relay is None or _relay.pid != os.getpid():
        client = connect(settings)
        keys = Keys(settings.redis_prefix)
        _relay = RelayProcess(os.getpid(), build_drainer(client, keys), client, keys)
    return _relay


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


# Set by the worker's main process when a warm shutdown begins; shared with the prefork
# children (an anonymous shared mapping made before they fork), so a drain listening on
# an idle inbox stops within one read instead of listening out its time.
_shutdown_flag = mmap.mmap(-1, 1)


@worker_shutting_down.connect
def _note_shutdown(**_: object) -> None:
    _shutdown_flag[0] = 1


def shutting_down() -> bool:
    """True once this worker began a warm shutdown (seen by every pool process)."""
    return _shutdown_flag[0] == 1


class Heartbeat:
    """Keeps one drain counted in the live-drains set, refreshing it before it lapses."""

    def __init__(self, client: redis.Redis, keys: Keys, drain_id: str) -> None:
        self._client = client
        self._keys = keys
        self._drain_id = drain_id
        self._refresh_at = 0.0

    def __call__(self, now: float) -> None:
        if now < self._refresh_at:
            return
        live.enter(self._client, self._keys, self._drain_id, now + LIVE_FOR_S)
        self._refresh_at = now + LIVE_FOR_S / 2


@app.task(name="relay.drain", bind=True, ignore_result=True)
def drain(self: Task) -> dict[str, object]:
    """Deliver what is waiting in the inbox; with nothing waiting, listen for up to
    ``CIO_IDLE_LISTEN_S``. Returns the outcome counts, or ``{"idle": True}``."""
    relay = relay_process()
    drain_id = self.request.id or uuid()
    started = time.monotonic()
    run: DrainRun | None = None
    try:
        run = relay.drainer.drain(
            recruit=recruit_drain,
            listen_s=settings.idle_listen_s,
            stop=shutting_down,
            alive=Heartbeat(relay.client, relay.keys, drain_id),
        )
    except ConfigError as exc:
        log.error("config_error", error=str(exc))
        raise
    finally:
        hand_over(relay, drain_id, run)
    return drain_result(run, time.monotonic() - started)


def drain_result(run: DrainRun, seconds: float) -> dict[str, object]:
    """What Flower shows for a drain: its outcome counts (with one INFO line for the
    log), or plainly ``idle`` when it only listened."""
    if not run.counts:
        return {"idle": True, **({"paused": run.paused} if run.paused else {})}
    counts: dict[str, object] = dict(run.counts)
    log.info("drain", s=round(seconds, 1), **counts)
    return counts


def hand_over(relay: RelayProcess, drain_id: str, run: DrainRun | None) -> None:
    """Leave the live-drains set, queueing a successor when events were still arriving
    at the end or when this was the last drain running, so the inbox is never left
    without a reader between two drains. A worker shutting down leaves it to the others
    (and to the beat)."""
    successor = uuid()
    now = time.time()
    until = now + drain_expires_s(settings)
    try:
        if run is None or shutting_down():
            live.leave(relay.client, relay.keys, drain_id, now)
            return
        if run.busy_at_end:
            live.enter(relay.client, relay.keys, successor, until)
            live.leave(relay.client, relay.keys, drain_id, now)
        elif not live.leave(relay.client, relay.keys, drain_id, now, successor, until):
            return
    except redis.RedisError as exc:  # the beat starts a drain when none is live
        log.warning("hand_over_failed", error=type(exc).__name__)
        return
    queue_drain(successor, "drain_handed_over")


def recruit_drain() -> None:
    """Queue one more drain for an idle worker process: the inbox has a backlog."""
    queue_drain(uuid(), "drain_recruited")


def queue_drain(task_id: str, what: str) -> None:
    """Queue a drain that expires like a tick if no process is free to run it soon."""
    try:
        drain.apply_async(task_id=task_id, expires=drain_expires_s(settings))
    except OperationalError as exc:  # the drain goes on; the beat still starts drains
        log.warning("queue_drain_failed", what=what, error=type(exc).__name__)
    else:
        log.debug(what)
