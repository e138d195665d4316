"""The Test event page: paste or pick a recent event and see what the relay would do with
it now — the exact Customer.io request body, or the skip or dead-letter reason — by
running the relay's own stages (``worker.prepare.parse_entries`` and ``route``) against
the live workflow and the remembered identities. ``Send`` adds it to the inbox."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from worker import audit
from worker.batching import batch_body
from worker.console.auth import check_csrf, require
from worker.console.templating import render
from worker.dlq import DeadLetterQueue
from worker.drain import remembered
from worker.errors import InvalidEvent
from worker.inbox import Entry
from worker.keys import Keys
from worker.prepare import Policy, needed_memories, parse_entries, route
from worker.producer import enqueue
from worker.redisconn import Durability, stream_rows
from worker.workflow.store import WorkflowStore

ENDPOINT_PATHS = {"batch": "/api/v2/batch", "anonymous": "/api/v1/events"}
RECENT = 20
SOURCE_KINDS = ("server", "client")


@dataclass(frozen=True, slots=True)
class DryRun:
    """What the relay would do with one event."""

    status: str  # "send", "skipped" or "dead"
    reason: str = ""
    detail: str = ""
    event_id: str = ""
    name: str = ""
    identifier: str = ""
    method: str = ""
    path: str = ""
    body: str = ""  # the request body, indented


def dry_run(
    client: redis.Redis, keys: Keys, policy: Policy, raw: bytes, source_kind: str, now: float
) -> DryRun:
    """Run ``raw`` through parse_entries and route as a drain would, sending nothing and
    remembering nothing."""
    fields = {b"event": raw}
    if source_kind == "client":
        fields[b"source_kind"] = b"client"
    entry = Entry(f"{int(now * 1000)}-0", fields)
    workflow = WorkflowStore(client, keys).get()
    parsed, dead = parse_entries([entry], workflow, policy)
    if dead:
        return DryRun("dead", dead[0].reason or "", dead[0].detail)
    known = remembered(client, keys, needed_memories(parsed))
    prepared = route(parsed, workflow, known, policy)
    if prepared.ready:
        ready = prepared.ready[0]
        op = ready.operation
        body = batch_body([op.encoded]) if op.endpoint == "batch" else op.encoded
        return DryRun(
            "send",
            event_id=ready.event_id,
            name=ready.event.name or "",
            identifier=ready.identity.value,
            method="POST",
            path=ENDPOINT_PATHS.get(op.endpoint, op.endpoint),
            body=json.dumps(json.loads(body), indent=2, ensure_ascii=False),
        )
    outcome = prepared.outcomes[0]
    return DryRun(
        outcome.status,
        outcome.reason or "",
        outcome.detail,
        event_id=outcome.event_id or "",
        name=outcome.name or "",
        identifier=outcome.identifier or "",
    )


@dataclass(frozen=True, slots=True)
class Recent:
    """An event to pick: where it is, a label and its raw JSON."""

    key: str
    label: str
    raw: str


def recent_events(client: redis.Redis, keys: Keys, count: int = RECENT) -> list[Recent]:
    """The newest raw events the relay still holds: the inbox (not yet delivered) and the
    dead-letter queue. (The activity stream keeps outcomes, not events.)"""
    found: list[Recent] = []
    for rid, fields in stream_rows(client.xrevrange(keys.inbox, "+", "-", count=count)):
        raw = fields.get(b"event")
        if raw is not None:
            found.append(Recent(f"inbox:{rid}", f"inbox {rid}: {_name(raw)}", raw.decode()))
    for rid, fields in stream_rows(client.xrevrange(keys.dlq, "+", "-", count=count)):
        raw = fields.get(b"raw")
        if raw is not None and fields.get(b"raw_kind") is None:
            reason = fields.get(b"reason", b"").decode()
            label = f"dead letter {rid} ({reason}): {_name(raw)}"
            found.append(Recent(f"dlq:{rid}", label, raw.decode("utf-8", "replace")))
    return found


def _name(raw: bytes) -> str:
    """The event's name or type for a label ("?" when it does not parse)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return "?"
    if isinstance(data, dict):
        return str(data.get("event") or data.get("name") or data.get("type") or "?")[:80]
    if isinstance(data, list) and data:
        return str(data[1] if len(data) > 1 else data[0])[:80]
    return "?"


def picked(client: redis.Redis, keys: Keys, key: str) -> str:
    """The raw JSON of a picked event (``inbox:<id>`` or ``dlq:<id>``), empty if gone."""
    where, _, rid = key.partition(":")
    if where == "dlq":
        letter = DeadLetterQueue(client, keys).get(rid)
        return letter.fields.get("raw", "") if letter else ""
    if where == "inbox":
        rows = stream_rows(client.xrange(keys.inbox, rid, rid))
        raw = rows[0][1].get(b"event") if rows else None
        return raw.decode("utf-8", "replace") if raw is not None else ""
    return ""


def _pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


# -- routes ----------------------------------------------------------------------------


def test_event_page(request: Request) -> Response:
    """The form; with ``?pick=inbox:<id>|dlq:<id>`` the picked event filled in."""
    user = require(request)
    client, keys = request.app.state.redis, request.app.state.keys
    pick = request.query_params.get("pick", "")
    text = _pretty(picked(client, keys, pick)) if pick else ""
    return render(
        request,
        "test_event.html",
        text=text,
        recent=recent_events(client, keys),
        kind="server",
        kinds=SOURCE_KINDS,
        result=None,
        sent="",
        error="",
        editor=user.may("editor"),
    )


async def test_event_run(request: Request) -> Response:
    """``Dry run`` (any signed-in user; changes nothing) or ``Send`` (editors)."""
    user = require(request)
    form = await check_csrf(request)
    client, keys = request.app.state.redis, request.app.state.keys
    text = str(form.get("event") or "")
    kind = str(form.get("source_kind") or "server")
    kind = kind if kind in SOURCE_KINDS else "server"
    settings = request.app.state.settings
    result: DryRun | None = None
    sent = error = ""
    if form.get("action") == "send":
        require(request, "editor")
        try:
            sent = await run_in_threadpool(
                enqueue,
                client,
                text,
                prefix=keys.prefix,
                max_bytes=settings.max_event_bytes,
                durability=Durability.from_settings(settings),
            )
        except InvalidEvent as exc:
            error = f"not sent: {exc.reason}: {exc.detail}"
        else:
            audit.record(client, keys, user.name, "test_event.send", {"inbox_id": sent})
    else:
        result = await run_in_threadpool(
            dry_run,
            client,
            keys,
            Policy.from_settings(settings),
            text.encode("utf-8"),
            kind,
            time.time(),
        )
    return render(
        request,
        "test_event.html",
        text=text,
        recent=recent_events(client, keys),
        kind=kind,
        kinds=SOURCE_KINDS,
        result=result,
        sent=sent,
        error=error,
        editor=user.may("editor"),
    )


routes: list[BaseRoute] = [
    Route("/test-event", test_event_page, name="test_event"),
    Route("/test-event", test_event_run, methods=["POST"], name="test_event_run"),
]
