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
    row = activity_row(outcome, f"{now:.3f}")
    return dict(zip(row[::2], row[1::2], strict=True))


def activity_row(outcome: Outcome, at: str) -> list[str]:
    """``activity_fields`` as a flat ``[field, value, ...]`` list, ``at`` already written
    (``f"{now:.3f}"``): the form the drain appends a batch in, built without a dict."""
    row = ["at", at, "outcome", outcome.status, "inbox_id", outcome.entry_id]
    if outcome.reason is not None:
        row += ("reason", str(outcome.reason))
    if outcome.event_id is not None:
        row += ("event_id", str(outcome.event_id))
    if outcome.name is not None:
        row += ("name", str(outcome.name))
    if outcome.identifier is not None:
        row += ("identifier", str(outcome.identifier))
    if outcome.http_status is not None:
        row += ("http_status", str(outcome.http_status))
    return row


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
