"""The emulated Track API: routes, faults in front, parsing and validation, then the store."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from worker.cio_limits import BATCH_REQUEST_MAX_BYTES, ENTITY_REQUEST_MAX_BYTES
from worker.emulator.apply import apply_operation, count_outcome
from worker.emulator.jsonbody import loads_with_item_sizes
from worker.emulator.recorder import redact_headers
from worker.emulator.state import EmulatorState, Request, Response
from worker.emulator.validation import (
    Problem,
    identifier_kind,
    validate_operation,
    validate_v1_event,
    validate_v1_identify,
)

REGION = "/api/v1/accounts/region"
CUSTOMER = "/api/v1/customers/{identifier}"
CUSTOMER_EVENTS = "/api/v1/customers/{identifier}/events"
ANONYMOUS_EVENTS = "/api/v1/events"
BATCH = "/api/v2/batch"
ENTITY = "/api/v2/entity"

_CUSTOMER_PATH = re.compile(r"/api/v1/customers/([^/]+)(/events)?/?")
_STATIC = {REGION: REGION, ANONYMOUS_EVENTS: ANONYMOUS_EVENTS, BATCH: BATCH, ENTITY: ENTITY}
_METHODS = {
    REGION: ("GET",),
    CUSTOMER: ("PUT", "DELETE"),
    CUSTOMER_EVENTS: ("POST",),
    ANONYMOUS_EVENTS: ("POST",),
    BATCH: ("POST",),
    ENTITY: ("POST",),
}
_REQUEST_LIMITS = {BATCH: BATCH_REQUEST_MAX_BYTES, ENTITY: ENTITY_REQUEST_MAX_BYTES}


def match_route(path: str) -> tuple[str | None, str | None]:
    """The route template of a path and its percent-decoded identifier, if any."""
    template = _STATIC.get(path.rstrip("/"))
    if template is not None:
        return template, None
    match = _CUSTOMER_PATH.fullmatch(path)
    if match is None:
        return None, None
    return (CUSTOMER_EVENTS if match.group(2) else CUSTOMER), unquote(match.group(1))


@dataclass(slots=True)
class _Call:
    """One routed Track request on its way through the emulator."""

    template: str
    identifier: str | None
    request: Request
    now: float
    body: Any = None
    item_sizes: list[int] | None = None
    applied: int = 0
    events: tuple[int, int] | None = None


def _error(template: str, status: int, messages: list[str]) -> Response:
    """A whole-request error in the shape of the endpoint's family."""
    if template in (BATCH, ENTITY):
        return Response(status, {"meta": {"errors": messages}})
    return Response(status, {"meta": {"error": "; ".join(messages)}})


def handle_track(state: EmulatorState, request: Request) -> Response:
    """Answer one Track API request as Customer.io would, faults first, and record it."""
    now = state.clock()
    template, identifier = match_route(request.path)
    call = _Call(template or "other", identifier, request, now)
    if template is None:
        response = Response(404, {"meta": {"error": "Not Found"}})
    elif request.method not in _METHODS[template]:
        response = Response(405, {"meta": {"error": "Method Not Allowed"}})
    else:
        response = _faults_before(state, call) or _parse(call) or _serve(state, call)
    _record(state, call, response)
    return response


def _faults_before(state: EmulatorState, call: _Call) -> Response | None:
    """Latency, outage, 401 mode, credentials, rate limit and random errors, in that order."""
    counts = state.counters.faults
    with state.lock:
        injector = state.injector
        delay_s = injector.latency_s()
        if delay_s:
            counts["latency"] += 1
            counts["latency_ms"] += round(delay_s * 1000)
        outage = injector.outage(call.now)
        unauthorized_mode = injector.config.unauthorized
    if delay_s:
        state.sleep(delay_s)
    if outage != "off":
        with state.lock:
            counts["outage_503"] += 1
        return Response(503, {"meta": {"error": "Service Unavailable"}})
    if unauthorized_mode or not state.authorized(call.request.header("Authorization")):
        if unauthorized_mode:
            with state.lock:
                counts["unauthorized_mode"] += 1
        return Response(401, {"meta": {"error": "Unauthorized request"}})
    status: int | None
    with state.lock:
        if injector.rate_limited(call.now):
            counts["rate_limit"] += 1
            status = 429
        else:
            status = injector.injected_status()
            if status is None:
                return None
            counts[f"error_{status}"] += 1
        retry_after = injector.retry_after(call.now) if status == 429 else None
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    message = "Too Many Requests" if status == 429 else f"injected {status}"
    return Response(status, {"meta": {"error": message}}, headers)


def _parse(call: _Call) -> Response | None:
    """Parse the body into ``call``, or answer the whole-request error (size, syntax, shape)."""
    raw = call.request.body
    if not raw and call.request.method in ("GET", "DELETE"):
        return None
    limit = _REQUEST_LIMITS.get(call.template)
    if limit is not None and len(raw) > limit:
        return _error(call.template, 413, [f"request body is larger than {limit} bytes"])
    try:
        if call.template == BATCH:
            call.body, call.item_sizes = loads_with_item_sizes(raw, "batch")
        else:
            call.body = json.loads(raw)
    except ValueError:
        return _error(call.template, 400, ["request body is not valid JSON"])
    if not isinstance(call.body, dict):
        return _error(call.template, 400, ["request body must be a JSON object"])
    return None


def _poisoned(state: EmulatorState, call: _Call) -> bool:
    marker = state.injector.config.poison
    if not marker:
        return False
    return marker in (call.identifier or "") or marker in json.dumps(call.body, ensure_ascii=False)


def _serve(state: EmulatorState, call: _Call) -> Response:
    """Validate and apply a parsed request whose faults did not fire."""
    if call.template == REGION:
        return Response(200, {"url": state.base_url, "region": "us", "environment_id": 1})
    if _poisoned(state, call):
        with state.lock:
            state.counters.faults["poison"] += 1
        return Response(400, {"meta": {"error": "request rejected: it holds a poison operation"}})
    if call.template == BATCH:
        return _batch(state, call)
    if call.template == ENTITY:
        problems = validate_operation(call.body)
    elif call.template == CUSTOMER and call.request.method == "DELETE":
        problems = []
    elif call.template == CUSTOMER:
        problems = validate_v1_identify(call.identifier or "", call.body)
    else:
        problems = validate_v1_event(call.identifier, call.body, body_bytes=len(call.request.body))
    if problems:
        with state.lock:
            state.counters.totals["operations_rejected"] += 1
        return _error(call.template, 400, [p.message for p in problems])
    with state.lock:
        first = len(state.store.events)
        if call.template == ENTITY:
            outcome = apply_operation(state.store, call.body, ENTITY, call.now)
            count_outcome(state.counters, outcome, call.body["action"])
        else:
            _apply_v1(state, call)
        call.applied, call.events = 1, (first, len(state.store.events))
    return Response(200, {})


def _apply_v1(state: EmulatorState, call: _Call) -> None:
    """Apply a valid v1 request: identify, delete, person event or anonymous event."""
    store, body, now = state.store, call.body, call.now
    event_type = body.get("type", "event") if isinstance(body, dict) else "event"
    if call.identifier is None:
        outcome = store.track_anonymous(
            body, event_type=event_type, endpoint=call.template, now=now
        )
        operation = "anonymous_" + event_type
    elif call.template == CUSTOMER_EVENTS:
        ref = identifier_kind(call.identifier)
        outcome = store.track(
            ref, body, event_type=event_type, data_key="data", endpoint=call.template, now=now
        )
        operation = event_type
    elif call.request.method == "DELETE":
        outcome, operation = store.delete(identifier_kind(call.identifier)), "delete"
    else:
        ref = identifier_kind(call.identifier)
        outcome = store.identify(ref, body, timestamp=body.get("_timestamp"), now=now)
        operation = "identify"
    count_outcome(state.counters, outcome, operation)


def _batch_errors(index: int, problems: list[Problem]) -> list[dict[str, Any]]:
    return [
        {"batch_index": index, "reason": p.reason, "field": p.field, "message": p.message}
        for p in problems
    ]


def _batch(state: EmulatorState, call: _Call) -> Response:
    """``POST /api/v2/batch``: apply the valid operations, list the invalid ones (207)."""
    ops = call.body.get("batch")
    sizes = call.item_sizes
    if not isinstance(ops, list) or sizes is None:
        return _error(BATCH, 400, ["batch must be a list of operations"])
    verdicts = [
        validate_operation(op, size_bytes=size) for op, size in zip(ops, sizes, strict=True)
    ]
    errors: list[dict[str, Any]] = []
    with state.lock:
        store, counters = state.store, state.counters
        first = len(store.events)
        for index, (op, problems) in enumerate(zip(ops, verdicts, strict=True)):
            if problems:
                errors += _batch_errors(index, problems)
                counters.totals["operations_rejected"] += 1
            else:
                outcome = apply_operation(store, op, BATCH, call.now)
                count_outcome(counters, outcome, op["action"])
                call.applied += 1
        call.events = (first, len(store.events))
    return Response(207, {"errors": errors}) if errors else Response(200, {})


def _record(state: EmulatorState, call: _Call, response: Response) -> None:
    """Count the answer and keep the request (never its credentials).

    ``time`` is when the request arrived, ``answered_at`` when its answer was ready (after
    any added latency); ``applied`` counts the operations applied and ``events`` is the
    range ``[first, end)`` of stored-event sequence numbers it added, so each accepted
    event can be joined to the moment it was accepted.
    """
    request = call.request
    record: dict[str, Any] = {
        "time": call.now,
        "answered_at": state.clock(),
        "applied": call.applied,
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": redact_headers(request.headers),
        "body_bytes": len(request.body),
        "status": response.status,
        "response": response.body,
    }
    if call.events is not None:
        record["events"] = list(call.events)
    if response.headers:
        record["response_headers"] = dict(response.headers)
    route = f"{request.method} {call.template}"
    with state.lock:
        state.counters.request(route, response.status, len(request.body))
        state.recorder.add(record, b"" if state.lean else request.body)
