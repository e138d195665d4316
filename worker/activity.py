"""``<prefix>:activity``: a capped stream of recent outcomes, the local twin of Customer.io's
Activity Logs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis

from worker.keys import Keys
from worker.outcomes import Outcome
from worker.redisconn import StreamRow, read_rows, stream_rows


def activity_fields(outcome: Outcome, now: float) -> dict[str, str]:
    """The activity entry for one outcome (strings only, no event payload)."""
    fields = {"at": f"{now:.3f}", "outcome": outcome.status, "inbox_id": outcome.entry_id}
    optional = {
        "reason": outcome.reason,
        "event_id": outcome.event_id,
        "name": outcome.name,
        "identifier": outcome.identifier,
        "http_status": outcome.http_status,
    }
    fields.update({k: str(v) for k, v in optional.items() if v is not None})
    return fields


def recent(client: redis.Redis, keys: Keys, count: int) -> list[dict[str, Any]]:
    """The last ``count`` activity entries, oldest first."""
    rows = stream_rows(client.xrevrange(keys.activity, "+", "-", count=count))
    return [_row(row) for row in reversed(rows)]


def follow(
    client: redis.Redis, keys: Keys, after: str = "$", block_ms: int = 1000
) -> Iterator[dict[str, Any]]:
    """New activity entries as they are written, forever (stop with Ctrl-C)."""
    last = after
    while True:
        reply = client.xread({keys.activity: last}, block=block_ms, count=500)
        for _, rows in read_rows(reply):
            for raw in rows:
                row = _row(raw)
                last = row["id"]
                yield row


def _row(row: StreamRow) -> dict[str, Any]:
    rid, fields = row
    return {
        "id": rid,
        **{k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()},
    }
