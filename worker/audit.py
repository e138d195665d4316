"""The audit log: who did what and when (workflow changes, rollbacks, replays, purges,
pause/resume, sign-ins), in a capped Redis stream shared by the console and the CLI."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from worker.keys import Keys
from worker.redisconn import as_text

# Entries kept; older ones are trimmed (approximately, as XADD MAXLEN ~ does).
AUDIT_MAX = 10_000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded action; ``detail`` never holds secrets (no passwords, no API keys)."""

    id: str
    at: float
    user: str
    action: str
    detail: dict[str, Any]


def record(
    client: redis.Redis | redis.client.Pipeline,
    keys: Keys,
    user: str,
    action: str,
    detail: dict[str, Any] | None = None,
    *,
    at: float | None = None,
) -> None:
    """Append one entry (``action`` e.g. ``login``, ``workflow.save``) to the audit stream."""
    fields = {
        "at": repr(time.time() if at is None else at),
        "user": user,
        "action": action,
        "detail": json.dumps(detail or {}, ensure_ascii=False, separators=(",", ":")),
    }
    client.xadd(keys.audit, fields, maxlen=AUDIT_MAX, approximate=True)  # type: ignore[arg-type]


def read(
    client: redis.Redis, keys: Keys, count: int = 100, *, before: str | None = None
) -> list[AuditEntry]:
    """The newest ``count`` entries, newest first; ``before`` pages on from an entry id."""
    top = f"({before}" if before else "+"
    rows: Any = client.xrevrange(keys.audit, top, "-", count=count)
    return [_entry(i, f) for i, f in rows or []]


def _entry(entry_id: bytes | str, fields: dict[Any, Any]) -> AuditEntry:
    text = {as_text(k): as_text(v) for k, v in fields.items()}
    try:
        detail = json.loads(text.get("detail", "{}"))
    except ValueError:
        detail = {"raw": text.get("detail", "")}
    return AuditEntry(
        id=as_text(entry_id),
        at=float(text.get("at", "0") or 0),
        user=text.get("user", ""),
        action=text.get("action", ""),
        detail=detail if isinstance(detail, dict) else {"value": detail},
    )


def describe(detail: dict[str, Any]) -> str:
    """A detail as short ``key=value`` text for tables."""
    return ", ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
        for k, v in detail.items()
    )
