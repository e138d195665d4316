"""The Dead letters page: list and filter the DLQ, show one entry, replay or purge (a
dry-run count on a confirmation page first), export as JSON lines.

Every rule comes from ``worker.dlq``: its ``Filter`` decides what matches and
``DeadLetterQueue`` replays (same raw bytes, so the same ULID) and purges.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from worker import audit
from worker.console.auth import check_csrf, require
from worker.console.templating import render
from worker.dlq import DeadLetter, DeadLetterQueue, Filter
from worker.keys import Keys
from worker.redisconn import StreamRow, hash_ints, stream_rows

PAGE_SIZE = 50
SCAN_CHUNK = 500
SCAN_CAP = 5_000  # entries one list page reads at most (a rare filter stays fast)
ACTIONS = ("replay", "purge")


@dataclass(frozen=True, slots=True)
class LetterPage:
    """Dead letters newest first, and where the next older page starts."""

    letters: list[DeadLetter]
    older: str | None


def letter_of(row: StreamRow) -> DeadLetter:
    rid, fields = row
    return DeadLetter(rid, {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()})


def filter_from(query: Any, ids: tuple[str, ...] = ()) -> Filter:
    """The DLQ filter a request names (reason and name; empty means any)."""
    return Filter(
        reason=(query.get("reason") or "").strip() or None,
        name=(query.get("name") or "").strip() or None,
        ids=ids,
    )


def filter_query(flt: Filter) -> dict[str, str]:
    return {k: v for k, v in (("reason", flt.reason), ("name", flt.name)) if v}


def list_page(
    client: redis.Redis,
    keys: Keys,
    flt: Filter,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> LetterPage:
    """Up to ``limit`` matching dead letters older than ``before``, newest first (XREVRANGE
    with COUNT, at most ``SCAN_CAP`` entries read), matched by ``worker.dlq.Filter``."""
    found: list[DeadLetter] = []
    end = f"({before}" if before else "+"
    scanned = 0
    last: str | None = None
    while len(found) < limit and scanned < SCAN_CAP:
        chunk = stream_rows(client.xrevrange(keys.dlq, end, "-", count=SCAN_CHUNK))
        for row in chunk:
            scanned += 1
            letter = letter_of(row)
            last = letter.id
            if flt.matches(letter):
                found.append(letter)
                if len(found) >= limit:
                    break
        if len(chunk) < SCAN_CHUNK and len(found) < limit:
            return LetterPage(found, None)
        end = f"({last}"
    return LetterPage(found, last)


def known_reasons(client: redis.Redis, keys: Keys) -> list[str]:
    """Dead-letter reasons the relay has counted (``dead:<reason>``), for the filter list."""
    counts = hash_ints(client, keys.counters)
    return sorted(k.split(":", 1)[1] for k in counts if k.startswith("dead:"))


def pretty(raw: str) -> str:
    """The raw event indented when it is JSON, else as stored."""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw


def export_lines(dlq: DeadLetterQueue, flt: Filter) -> Iterator[bytes]:
    """Every matching dead letter as one JSON line (what ``cio-relay dlq export`` writes)."""
    for letter in dlq.scan(flt):
        yield (json.dumps(letter.as_dict(), ensure_ascii=False) + "\n").encode("utf-8")


def describe(flt: Filter) -> str:
    """The selection in words, for the confirmation page and the audit log."""
    if flt.ids:
        return f"{len(flt.ids)} selected"
    parts = [f"reason={flt.reason}" if flt.reason else "", f"name={flt.name}" if flt.name else ""]
    chosen = " ".join(p for p in parts if p)
    return f"all with {chosen}" if chosen else "all"


# -- routes ----------------------------------------------------------------------------


def dlq_page(request: Request) -> Response:
    user = require(request)
    client, keys = request.app.state.redis, request.app.state.keys
    flt = filter_from(request.query_params)
    result = list_page(client, keys, flt, request.query_params.get("before") or None)
    return render(
        request,
        "dlq.html",
        letters=result.letters,
        older=result.older,
        flt=flt,
        filters=filter_query(flt),
        reasons=known_reasons(client, keys),
        size=int(client.xlen(keys.dlq)),
        editor=user.may("editor"),
        done=request.query_params.get("done", ""),
    )


def dlq_entry(request: Request) -> Response:
    user = require(request)
    dlq = DeadLetterQueue(request.app.state.redis, request.app.state.keys)
    letter = dlq.get(request.path_params["entry_id"])
    return render(
        request,
        "dlq_entry.html",
        letter=letter,
        raw=pretty(letter.fields.get("raw", "")) if letter else "",
        editor=user.may("editor"),
        status_code=200 if letter else 404,
    )


def dlq_export(request: Request) -> Response:
    require(request)
    dlq = DeadLetterQueue(request.app.state.redis, request.app.state.keys)
    return StreamingResponse(
        export_lines(dlq, filter_from(request.query_params)),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="dead-letters.jsonl"'},
    )


async def dlq_action(request: Request) -> Response:
    """Replay or purge: without ``confirm`` a page with the dry-run count; with it, act."""
    user = require(request, "editor")
    form = await check_csrf(request)
    action = request.path_params["action"]
    if action not in ACTIONS:
        return Response("unknown action", status_code=404)
    ids = tuple(str(i) for i in form.getlist("id") if str(i))
    flt = filter_from(form, ids)
    dlq = DeadLetterQueue(request.app.state.redis, request.app.state.keys)
    if form.get("confirm") != "yes":
        count = await run_in_threadpool(_dry_run, dlq, action, flt)
        return render(
            request, "dlq_confirm.html", action=action, count=count, flt=flt, what=describe(flt)
        )
    done = await run_in_threadpool(_act, dlq, action, flt)
    audit.record(
        request.app.state.redis,
        request.app.state.keys,
        user.name,
        f"dlq.{action}",
        {
            "selection": describe(flt),
            **filter_query(flt),
            "ids": list(flt.ids)[:100],
            "count": done,
        },
    )
    verb = "replayed" if action == "replay" else "purged"
    back = {**filter_query(filter_from(form)), "done": f"{verb} {done}"}
    if ids:
        back = {"done": f"{verb} {done}"}
    return RedirectResponse(f"/dlq?{urlencode(back)}", status_code=303)


def _dry_run(dlq: DeadLetterQueue, action: str, flt: Filter) -> int:
    if action == "replay":
        return len(dlq.replay(flt, dry_run=True))
    return dlq.purge(flt, dry_run=True)


def _act(dlq: DeadLetterQueue, action: str, flt: Filter) -> int:
    if action == "replay":
        return len(dlq.replay(flt))
    return dlq.purge(flt)


routes: list[BaseRoute] = [
    Route("/dlq", dlq_page, name="dlq"),
    Route("/dlq/export", dlq_export, name="dlq_export"),
    Route("/dlq/entry/{entry_id}", dlq_entry, name="dlq_entry"),
    Route("/dlq/{action}", dlq_action, methods=["POST"], name="dlq_action"),
]
