"""The emulated Track API: routes, faults in front, validation, then the store."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from worker.cio_limits import (
    BATCH_OPERATION_MAX_BYTES,
    BATCH_REQUEST_MAX_BYTES,
    ENTITY_REQUEST_MAX_BYTES,
)
from worker.emulator.recorder import redact_headers
from worker.emulator.state import EmulatorState, Request, Response
from worker.emulator.store import Ref, Store
from worker.emulator.validation import (
    EVENT_ACTIONS,
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
_STATIC = {
    REGION.rstrip("/"): REGION,
    ANONYMOUS_EVENTS: ANONYMOUS_EVENTS,
    BATCH: BATCH,
    ENTITY: ENTITY,
}
_METHODS = {
    REGION: ("GET",),
    CUSTOMER: ("PUT", "DELETE"),
    CUSTOMER_EVENTS: ("POST",),
    ANONYMOUS_EVENTS: ("POST",),
    BATCH: ("POST",),
    ENTITY: ("POST",),
}
_V2 = (BATCH, ENTITY)


def match_route(path: str) -> tuple[str | None, str | None]:
    """The route template of a path and its percent-decoded identifier, if any."""
    template = _STATIC.get(path.rstrip("/"))
    if template is not None:
        return template, None
    match = _CUSTOMER_PATH.fullmatch(path)
    if match is None:
        return None, None
    return (CUSTOMER_EVENTS if match.group(2) else CUSTOMER), unquote(match.group(1))


def _error(template: str, status: int, messages: list[str]) -> Response:
    """A whole-request error in the shape of the endpoint's family."""
    if template in _V2:
        return Response(status, {"meta": {"errors": messages}})
    return Response(status, {"meta": {"error": "; ".join(messages)}})


def _messages(problems: list[Problem]) -> list[str]:
    return [p.message for p in problems]


def handle_track(state: EmulatorState, request: Request) -> Response:
    """Answer one Track API request as Customer.io would, faults first, and record it."""
    now = state.clock()
    template, identifier = match_route(request.path)
    body: Any = None
    if template is None:
        response = Response(404, {"meta": {"error": "Not Found"}})
    elif request.method not in _METHODS[template]:
        response = Response(405, {"meta": {"error": "Method Not Allowed"}})
    else:
        body, response = _answer(state, template, identifier, request, now)
    _record(state, template or "other", request, body, response, now)
    return response


def _answer(
    state: EmulatorState, template: str, identifier: str | None, request: Request, now: float
) -> tuple[Any, Response]:
    """The parsed body (if it got that far) and the answer to a routed request."""
    fault = _faults_before(state, request, now)
    if fault is not None:
        return None, fault
    body: Any = None
    if request.body or request.method not in ("GET", "DELETE"):
        body, error = _parse(template, request.body)
        if error is not None:
            return body, error
    return body, _serve(state, template, identifier, body, request, now)


def _faults_before(state: EmulatorState, request: Request, now: float) -> Response | None:
    """Latency, outage, 401 mode, credentials, rate limit and random errors, in that order."""
    with state.lock:
        injector = state.injector
        delay_s = injector.latency_s()
        if delay_s:
            state.counters.faults["latency"] += 1
            state.counters.faults["latency_ms"] += round(delay_s * 1000)
        outage = injector.outage(now)
        unauthorized_mode = injector.config.unauthorized
    if delay_s:
        state.sleep(delay_s)
    if outage != "off":
        with state.lock:
            state.counters.faults["outage_503"] += 1
        return Response(503, {"meta": {"error": "Service Unavailable"}})
    if unauthorized_mode or not state.authorized(request.header("Authorization")):
        if unauthorized_mode:
            with state.lock:
                state.counters.faults["unauthorized_mode"] += 1
        return Response(401, {"meta": {"error": "Unauthorized request"}})
    with state.lock:
        if injector.rate_limited(now):
            state.counters.faults["rate_limit"] += 1
            retry_after = injector.retry_after(now)
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return Response(429, {"meta": {"error": "Too Many Requests"}}, headers)
        status = injector.injected_status()
        if status is None:
            return None
        state.counters.faults[f"error_{status}"] += 1
        retry_after = injector.retry_after(now) if status == 429 else None
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Response(status, {"meta": {"error": f"injected {status}"}}, headers)


def _parse(template: str, raw: bytes) -> tuple[Any, Response | None]:
    """The JSON body, or the whole-request error (size, syntax, not an object)."""
    limit = {BATCH: BATCH_REQUEST_MAX_BYTES, ENTITY: ENTITY_REQUEST_MAX_BYTES}.get(template)
    if limit is not None and len(raw) > limit:
        return None, _error(template, 413, [f"request body is larger than {limit} bytes"])
    try:
        body = json.loads(raw)
    except ValueError:
        return None, _error(template, 400, ["request body is not valid JSON"])
    if not isinstance(body, dict):
        return body, _error(template, 400, ["request body must be a JSON object"])
    return body, None


def _poisoned(state: EmulatorState, body: Any, identifier: str | None) -> bool:
    marker = state.injector.config.poison
    if not marker:
        return False
    return marker in (identifier or "") or marker in json.dumps(body, ensure_ascii=False)


def _serve(
    state: EmulatorState,
    template: str,
    identifier: str | None,
    body: Any,
    request: Request,
    now: float,
) -> Response:
    """Validate and apply a parsed request whose faults did not fire."""
    if template == REGION:
        return Response(200, {"url": state.base_url, "region": "us", "environment_id": 1})
    if _poisoned(state, body, identifier):
        with state.lock:
            state.counters.faults["poison"] += 1
        return Response(
            400, {"meta": {"error": "request rejected: it contains a poison operation"}}
        )
    if template == BATCH:
        return _batch(state, body, len(request.body), now)
    if template == ENTITY:
        problems = validate_operation(body, check_size=False)
        if problems:
            return _rejected(state, template, problems)
        with state.lock:
            _count(state, _apply(state.store, body, ENTITY, now), body["action"])
        return Response(200, {})
    assert identifier is not None or template == ANONYMOUS_EVENTS
    return _v1(state, template, identifier, body, request.method, len(request.body), now)


def _rejected(state: EmulatorState, template: str, problems: list[Problem]) -> Response:
    with state.lock:
        state.counters.totals["operations_rejected"] += 1
    return _error(template, 400, _messages(problems))


def _v1(
    state: EmulatorState,
    template: str,
    identifier: str | None,
    body: Any,
    method: str,
    body_bytes: int,
    now: float,
) -> Response:
    """The v1 endpoints: identify, delete, person event and anonymous event."""
    if template == CUSTOMER and identifier is not None:
        if method == "DELETE":
            with state.lock:
                _count(state, state.store.delete(identifier_kind(identifier)), "delete")
            return Response(200, {})
        problems = validate_v1_identify(identifier, body)
    else:
        problems = validate_v1_event(identifier, body, body_bytes=body_bytes)
    if problems:
        return _rejected(state, template, problems)
    event_type = body.get("type", "event")
    with state.lock:
        store = state.store
        if template == CUSTOMER and identifier is not None:
            timestamp = body.get("_timestamp")
            outcome = store.identify(
                identifier_kind(identifier), body, timestamp=timestamp, now=now
            )
            _count(state, outcome, "identify")
        elif identifier is not None:
            ref = identifier_kind(identifier)
            outcome = store.track(
                ref, body, event_type=event_type, data_key="data", endpoint=template, now=now
            )
            _count(state, outcome, event_type)
        else:
            outcome = store.track_anonymous(body, event_type=event_type, endpoint=template, now=now)
            _count(state, outcome, "anonymous_" + event_type)
    return Response(200, {})


def _batch(state: EmulatorState, body: dict[str, Any], body_bytes: int, now: float) -> Response:
    """``POST /api/v2/batch``: apply the valid operations, list the invalid ones (207)."""
    ops = body.get("batch")
    if not isinstance(ops, list):
        return _error(BATCH, 400, ["batch must be a list of operations"])
    # An operation cannot exceed 32 KB when the whole request does not.
    check_size = body_bytes > BATCH_OPERATION_MAX_BYTES
    verdicts = [validate_operation(op, check_size=check_size) for op in ops]
    errors: list[dict[str, Any]] = []
    with state.lock:
        store = state.store
        for index, (op, problems) in enumerate(zip(ops, verdicts, strict=True)):
            if problems:
                errors.extend(
                    {
                        "batch_index": index,
                        "reason": p.reason,
                        "field": p.field,
                        "message": p.message,
                    }
                    for p in problems
                )
                state.counters.totals["operations_rejected"] += 1
            else:
                _count(state, _apply(store, op, BATCH, now), op["action"])
    if errors:
        return Response(207, {"errors": errors})
    return Response(200, {})


def _ref(identifiers: Mapping[str, str]) -> Ref:
    kind, value = next(iter(identifiers.items()))
    return kind, value


def _apply(store: Store, op: dict[str, Any], endpoint: str, now: float) -> str:
    """Apply one valid v2 person operation; returns the store's outcome."""
    action = op["action"]
    if action == "merge":
        return store.merge(_ref(op["primary"]), _ref(op["secondary"]), now)
    ref = _ref(op["identifiers"])
    if action == "identify":
        return store.identify(
            ref, op.get("attributes") or {}, timestamp=op.get("timestamp"), now=now
        )
    if action in EVENT_ACTIONS:
        return store.track(
            ref, op, event_type=action, data_key="attributes", endpoint=endpoint, now=now
        )
    if action == "delete":
        return store.delete(ref)
    if action == "suppress":
        return store.suppress(ref)
    return store.unsuppress(ref)


def _count(state: EmulatorState, outcome: str, operation: str) -> None:
    """Count one applied operation and its outcome; call under the lock."""
    counters = state.counters
    counters.operations[operation] += 1
    counters.outcomes[outcome] += 1
    if outcome == "accepted":
        counters.totals["events_accepted"] += 1
    elif outcome == "duplicate":
        counters.totals["events_duplicate"] += 1


def _record(
    state: EmulatorState,
    route: str,
    request: Request,
    body: Any,
    response: Response,
    now: float,
) -> None:
    """Count the answer and keep the request (never its credentials)."""
    record: dict[str, Any] = {
        "time": now,
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": redact_headers(request.headers),
        "body_bytes": len(request.body),
        "status": response.status,
        "response": response.body,
    }
    if response.headers:
        record["response_headers"] = dict(response.headers)
    if request.body and not state.lean:
        record["body"] = body if body is not None else _recorded_body(request.body)
    with state.lock:
        state.counters.request(f"{request.method} {route}", response.status, len(request.body))
        state.recorder.add(record)


def _recorded_body(raw: bytes) -> Any:
    """A body that was answered before parsing: its JSON, else the start of its text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:1000].decode("utf-8", "replace")
