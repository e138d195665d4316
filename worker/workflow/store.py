"""The live workflow in Redis, shared by every replica and changed without a restart.

Storage: one hash at ``keys.workflow`` with the fields ``workflow`` (the workflow as a
JSON object in the file's shape, see ``loader.workflow_to_dict``), ``version`` (an
integer bumped by every change), ``updated_at`` (Unix seconds of the last change) and
``author`` (who made it: a console user, ``cli:<os user>``, or ``file`` for the seed).
Every change also pushes ``{version, author, at, note, workflow}`` onto the capped list
``keys.workflow_history`` (newest first) and one entry onto the audit stream, in the
same transaction, so history and audit never miss a change.
"""

from __future__ import annotations

import getpass
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis

from worker import audit
from worker.errors import WorkflowError
from worker.keys import Keys
from worker.workflow.loader import workflow_from_dict, workflow_to_dict
from worker.workflow.model import Workflow

FIELD_WORKFLOW = "workflow"
FIELD_VERSION = "version"
FIELD_UPDATED_AT = "updated_at"
FIELD_AUTHOR = "author"
# Versions kept in the history list; older ones are trimmed.
HISTORY_MAX = 500

# What applies while nothing has been stored: every event off.
EMPTY = Workflow()


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """When the live workflow last changed; version 0 means none is stored."""

    version: int
    updated_at: float | None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class Version:
    """One stored version of the workflow, as the history list keeps it."""

    version: int
    author: str
    at: float
    note: str
    workflow: dict[str, Any]


class StaleVersion(WorkflowError):
    """An edit based on an older version than the live one; says who changed it and when."""

    def __init__(self, based_on: int, live: StoreInfo) -> None:
        who = live.author or "someone"
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(live.updated_at or 0))
        super().__init__(
            f"the workflow changed since you loaded it: you edited version {based_on}, "
            f"but {who} saved version {live.version} at {when}"
        )
        self.based_on = based_on
        self.live = live


class WorkflowStore:
    """Reads and changes the live workflow; every method is one round trip or one transaction."""

    def __init__(
        self, client: redis.Redis, keys: Keys, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._key = keys.workflow
        self._keys = keys
        self._clock = clock

    def get(self) -> Workflow:
        """The live workflow (one HGET; parsing is cached on the stored text)."""
        raw = self._redis.hget(self._key, FIELD_WORKFLOW)
        return EMPTY if raw is None else decode(raw)

    def info(self) -> StoreInfo:
        """The version and last change time of the live workflow."""
        fields = [FIELD_VERSION, FIELD_UPDATED_AT, FIELD_AUTHOR]
        return _info(self._redis.hmget(self._key, fields))

    def version(self) -> int:
        """The live workflow's version: 0 when none is stored, bumped by every change."""
        return self.info().version

    def replace(self, workflow: Workflow, *, author: str = "cli", note: str = "replaced") -> int:
        """Store a new live workflow; returns its version."""
        changed = self._change(lambda raw: workflow, author=author, note=note)
        assert changed is not None
        return changed[1]

    def save(self, workflow: Workflow, *, based_on: int, author: str, note: str = "edited") -> int:
        """Store ``workflow`` only if the live version is still ``based_on``; returns the new
        version, or raises StaleVersion saying who changed it since."""
        changed = self._change(lambda raw: workflow, author=author, note=note, based_on=based_on)
        assert changed is not None
        return changed[1]

    def seed(self, workflow: Workflow, *, author: str = "file") -> bool:
        """Store ``workflow`` only if none is stored yet; True when it was stored."""
        change = self._change(lambda raw: workflow if raw is None else None, author=author)
        return change is not None

    def set_enabled(self, name: str, enabled: bool, *, author: str = "cli") -> Workflow:
        """Switch one event on or off atomically; an unlisted event gets a rule of its own."""
        changed = self._change(
            lambda raw: (EMPTY if raw is None else decode(raw)).with_enabled(name, enabled),
            author=author,
            note=f"{'enabled' if enabled else 'disabled'} {name}",
        )
        assert changed is not None
        return changed[0]

    def history(self, count: int = HISTORY_MAX) -> list[Version]:
        """The stored versions, newest first."""
        rows: Any = self._redis.lrange(self._keys.workflow_history, 0, count - 1)
        return [_version(raw) for raw in rows or []]

    def at_version(self, version: int) -> Version | None:
        """One stored version, or None when it is not (or no longer) in the history."""
        return next((v for v in self.history() if v.version == version), None)

    def _change(
        self,
        change: Callable[[bytes | str | None], Workflow | None],
        *,
        author: str,
        note: str = "seeded",
        based_on: int | None = None,
    ) -> tuple[Workflow, int] | None:
        """Read-modify-write under WATCH, retried when another client wrote in between
        (unless ``based_on`` pins the version the change was made on)."""
        fields = [FIELD_WORKFLOW, FIELD_VERSION, FIELD_UPDATED_AT, FIELD_AUTHOR]
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self._key)
                    raw, *rest = pipe.hmget(self._key, fields)
                    live = _info(rest)
                    if based_on is not None and live.version != based_on:
                        pipe.unwatch()
                        raise StaleVersion(based_on, live)
                    changed = change(raw)
                    if changed is None:
                        pipe.unwatch()
                        return None
                    pipe.multi()
                    version = live.version + 1
                    self._write(pipe, changed, version, author, note)
                    pipe.execute()
                    return changed, version
                except redis.WatchError:
                    continue

    def _write(
        self, pipe: redis.client.Pipeline, workflow: Workflow, version: int, author: str, note: str
    ) -> None:
        at = self._clock()
        text = encode(workflow)
        pipe.hset(
            self._key,
            mapping={
                FIELD_WORKFLOW: text,
                FIELD_VERSION: version,
                FIELD_UPDATED_AT: repr(at),
                FIELD_AUTHOR: author,
            },
        )
        entry = {"version": version, "author": author, "at": at, "note": note}
        history = json.dumps({**entry, "workflow": json.loads(text)}, ensure_ascii=False)
        pipe.lpush(self._keys.workflow_history, history)
        pipe.ltrim(self._keys.workflow_history, 0, HISTORY_MAX - 1)
        audit.record(pipe, self._keys, author, "workflow.change", entry, at=at)


def cli_author() -> str:
    """The author the CLI records: ``cli:<os user>``."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _info(values: list[Any]) -> StoreInfo:
    version, updated_at, author = values
    return StoreInfo(
        int(version) if version is not None else 0,
        float(updated_at) if updated_at is not None else None,
        author.decode() if isinstance(author, bytes) else author,
    )


def _version(raw: bytes | str) -> Version:
    data = json.loads(raw)
    return Version(
        int(data["version"]),
        str(data.get("author", "")),
        float(data.get("at", 0)),
        str(data.get("note", "")),
        data.get("workflow", {}),
    )


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
