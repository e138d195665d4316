"""The live workflow in Redis, shared by every replica and changed without a restart.

Storage: one hash at ``keys.workflow`` with the fields ``workflow`` (the workflow as a
JSON object in the file's shape, see ``loader.workflow_to_dict``), ``version`` (an
integer bumped by every change) and ``updated_at`` (Unix seconds of the last change).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import redis

from worker.errors import WorkflowError
from worker.keys import Keys
from worker.workflow.loader import workflow_from_dict, workflow_to_dict
from worker.workflow.model import Workflow

FIELD_WORKFLOW = "workflow"
FIELD_VERSION = "version"
FIELD_UPDATED_AT = "updated_at"

# What applies while nothing has been stored: every event off.
EMPTY = Workflow()


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """When the live workflow last changed; version 0 means none is stored."""

    version: int
    updated_at: float | None


class WorkflowStore:
    """Reads and changes the live workflow; every method is one round trip or one transaction."""

    def __init__(
        self, client: redis.Redis, keys: Keys, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._key = keys.workflow
        self._clock = clock

    def get(self) -> Workflow:
        """The live workflow (one HGET; parsing is cached on the stored text)."""
        raw = self._redis.hget(self._key, FIELD_WORKFLOW)
        return EMPTY if raw is None else decode(raw)

    def info(self) -> StoreInfo:
        """The version and last change time of the live workflow."""
        version, updated_at = self._redis.hmget(self._key, [FIELD_VERSION, FIELD_UPDATED_AT])
        return StoreInfo(
            int(version) if version is not None else 0,
            float(updated_at) if updated_at is not None else None,
        )

    def version(self) -> int:
        """The live workflow's version: 0 when none is stored, bumped by every change."""
        return self.info().version

    def replace(self, workflow: Workflow) -> int:
        """Store a new live workflow; returns its version."""
        with self._redis.pipeline(transaction=True) as pipe:
            self._write(pipe, workflow)
            return int(pipe.execute()[1])

    def seed(self, workflow: Workflow) -> bool:
        """Store ``workflow`` only if none is stored yet; True when it was stored."""
        return self._change(lambda raw: workflow if raw is None else None) is not None

    def set_enabled(self, name: str, enabled: bool) -> Workflow:
        """Switch one event on or off atomically; an unlisted event gets a rule of its own."""
        changed = self._change(
            lambda raw: (EMPTY if raw is None else decode(raw)).with_enabled(name, enabled)
        )
        assert changed is not None
        return changed

    def _change(self, change: Callable[[bytes | str | None], Workflow | None]) -> Workflow | None:
        """Read-modify-write under WATCH, retried when another client wrote in between."""
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self._key)
                    changed = change(pipe.hget(self._key, FIELD_WORKFLOW))
                    if changed is None:
                        pipe.unwatch()
                        return None
                    pipe.multi()
                    self._write(pipe, changed)
                    pipe.execute()
                    return changed
                except redis.WatchError:
                    continue

    def _write(self, pipe: redis.client.Pipeline, workflow: Workflow) -> None:
        pipe.hset(self._key, FIELD_WORKFLOW, encode(workflow))
        pipe.hincrby(self._key, FIELD_VERSION, 1)
        pipe.hset(self._key, FIELD_UPDATED_AT, repr(self._clock()))


def encode(workflow: Workflow) -> str:
    """The stored form of a workflow: compact JSON in the file's shape."""
    return json.dumps(workflow_to_dict(workflow), ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=8)
def decode(raw: bytes | str) -> Workflow:
    """A workflow from its stored form; cached so an unchanged workflow is parsed once."""
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return workflow_from_dict(data)
    except (ValueError, WorkflowError) as exc:
        raise WorkflowError(
            f"the live workflow in Redis is unreadable ({exc}); "
            "store a good one with: cio-relay workflow apply FILE"
        ) from None
