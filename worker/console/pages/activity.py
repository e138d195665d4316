"""The Activity page: the relay's activity stream (what ``cio-relay activity`` shows), newest
first, filtered, polled live, each row opening what the relay kept about that event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from worker.console.auth import require
from worker.console.templating import render
from worker.dlq import DeadLetter
from worker.keys import Keys
from worker.redisconn import StreamRow, stream_rows

PAGE_SIZE = 50
SCAN_CHUNK = 500
# A filtered page reads at most this many entries, so a rare filter stays fast; the page
# then offers "Older" from where it stopped.
SCAN_CAP = 5_000
LIVE_MAX = 200
OUTCOMES = ("delivered", "skipped", "dead", "retry")


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    """Which activity entries a page shows (every field empty: all)."""

    outcome: str = ""
    reason: str = ""
    name: str = ""
    identifier: str = ""

    @classmethod
    def from_query(cls, query: Any) -> ActivityFilter:
        return cls(
            outcome=(query.get("outcome") or "").strip(),
            reason=(query.get("reason") or "").strip(),
            name=(query.get("name") or "").strip(),
            identifier=(query.get("identifier") or "").strip(),
        )

    def matches(self, row: dict[str, Any]) -> bool:
        """Outcome and reason match exactly; name and identifier as a case-blind substring."""
        if self.outcome and row.get("outcome") != self.outcome:
            return False
        if self.reason and row.get("reason") != self.reason:
            return False
        if self.name and self.name.lower() not in row.get("name", "").lower():
            return False
        return not (
            self.identifier and self.identifier.lower() not in row.get("identifier", "").lower()
        )


@dataclass(frozen=True, slots=True)
class ActivityPage:
    """One page of entries, newest first, and where the next older page starts."""

    rows: list[dict[str, Any]]
    older: str | None  # exclusive upper bound for the next page, None at the end
    scanned: int


def page(
    client: redis.Redis,
    keys: Keys,
    flt: ActivityFilter,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> ActivityPage:
    """Up to ``limit`` matching entries older than ``before`` (newest first), reading the
    stream backwards in chunks (XREVRANGE with COUNT) and at most ``SCAN_CAP`` entries."""
    rows: list[dict[str, Any]] = []
    end = f"({before}" if before else "+"
    scanned = 0
    last_id: str | None = None
    while len(rows) < limit and scanned < SCAN_CAP:
        chunk = stream_rows(client.xrevrange(keys.activity, end, "-", count=SCAN_CHUNK))
        if not chunk:
            return ActivityPage(rows, None, scanned)
        for raw in chunk:
            scanned += 1
            row = activity_row_dict(raw)
            last_id = row["id"]
            if flt.matches(row):
                rows.append(row)
                if len(rows) >= limit:
                    break
        if len(chunk) < SCAN_CHUNK and len(rows) < limit:
            return ActivityPage(rows, None, scanned)
        end = f"({last_id}"
    return ActivityPage(rows, last_id, scanned)


def newer(
    client: redis.Redis, keys: Keys, flt: ActivityFilter, after: str
) -> tuple[list[dict[str, Any]], str]:
    """Matching entries written after ``after`` (newest first) and the new cursor."""
    raw = stream_rows(client.xrange(keys.activity, f"({after}", "+", count=LIVE_MAX))
    rows = [activity_row_dict(r) for r in raw]
    cursor = rows[-1]["id"] if rows else after
    return [r for r in reversed(rows) if flt.matches(r)], cursor


def latest_id(client: redis.Redis, keys: Keys) -> str:
    """The newest entry's id ("0-0" when the stream is empty): where live polling starts."""
    raw = stream_rows(client.xrevrange(keys.activity, "+", "-", count=1))
    return raw[0][0] if raw else "0-0"


def entry(client: redis.Redis, keys: Keys, entry_id: str) -> dict[str, Any] | None:
    raw = stream_rows(client.xrange(keys.activity, entry_id, entry_id))
    return activity_row_dict(raw[0]) if raw else None


def dead_letter_of(client: redis.Redis, keys: Keys, row: dict[str, Any]) -> DeadLetter | None:
    """The DLQ entry a dead activity entry wrote: same inbox id, added in the same MULTI, so
    it is searched only among DLQ entries added within a few seconds of the activity entry."""
    if row.get("outcome") != "dead":
        return None
    ms = int(row["id"].split("-", 1)[0])
    raw = stream_rows(client.xrange(keys.dlq, str(ms - 5_000), str(ms + 5_000), count=2_000))
    for rid, fields in raw:
        letter = DeadLetter(
            rid, {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
        )
        if letter.fields.get("inbox_id") == row.get("inbox_id"):
            return letter
    return None


def activity_row_dict(row: StreamRow) -> dict[str, Any]:
    """One activity entry as ``cio-relay activity`` reads it: its id and its text fields."""
    rid, fields = row
    return {"id": rid, **{k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}}


# -- routes ----------------------------------------------------------------------------


def activity_page(request: Request) -> Response:
    require(request)
    client, keys = request.app.state.redis, request.app.state.keys
    flt = ActivityFilter.from_query(request.query_params)
    before = request.query_params.get("before") or None
    result = page(client, keys, flt, before)
    return render(
        request,
        "activity.html",
        rows=result.rows,
        older=result.older,
        flt=flt,
        filters=_filter_query(flt),
        live=before is None,
        cursor=latest_id(client, keys),
        outcomes=OUTCOMES,
        total=int(client.xlen(keys.activity)),
    )


def activity_rows(request: Request) -> Response:
    """The rows written since ``after``, as table rows, for the page's live polling."""
    require(request)
    flt = ActivityFilter.from_query(request.query_params)
    after = request.query_params.get("after") or "0-0"
    rows, cursor = newer(request.app.state.redis, request.app.state.keys, flt, after)
    response = render(request, "activity_rows.html", rows=rows)
    response.headers["X-Activity-Cursor"] = cursor
    return response


def activity_entry(request: Request) -> Response:
    require(request)
    client, keys = request.app.state.redis, request.app.state.keys
    row = entry(client, keys, request.path_params["entry_id"])
    if row is None:
        return render(request, "activity_entry.html", row=None, letter=None, status_code=404)
    letter = dead_letter_of(client, keys, row)
    return render(request, "activity_entry.html", row=row, letter=letter)


def _filter_query(flt: ActivityFilter) -> dict[str, str]:
    return {
        k: getattr(flt, k) for k in ("outcome", "reason", "name", "identifier") if getattr(flt, k)
    }


routes: list[BaseRoute] = [
    Route("/activity", activity_page, name="activity"),
    Route("/activity/rows", activity_rows, name="activity_rows"),
    Route("/activity/entry/{entry_id}", activity_entry, name="activity_entry"),
]
