"""The control API under ``/_emulator/``: what was received, the store, counters and faults."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qs

from worker.emulator.faults import FaultConfig
from worker.emulator.recorder import readable
from worker.emulator.state import EmulatorState, Request, Response

PREFIX = "/_emulator/"


def contract_line(record: dict[str, Any]) -> dict[str, Any]:
    """A recorded request in the input format of ``cio-contract-check``."""
    line: dict[str, Any] = {
        "method": record["method"],
        "path": record["path"],
        "headers": record["headers"],
    }
    if "body" in record:
        line["body"] = record["body"]
    return line


def _int_param(query: dict[str, list[str]], name: str, default: int | None) -> int | None:
    values = query.get(name)
    if not values:
        return default
    return int(values[0])


def _truthy(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[0].lower() in ("1", "true", "yes")


def handle_control(state: EmulatorState, request: Request) -> Response:
    """Answer one control request; unknown paths are 404, bad input 400."""
    name = request.path[len(PREFIX) :].strip("/")
    try:
        query = parse_qs(request.query)
        body = json.loads(request.body) if request.body.strip() else {}
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        handler = _ROUTES.get((request.method, name))
        if handler is None:
            known = any(route_name == name for _, route_name in _ROUTES)
            return Response(405 if known else 404, {"error": f"no {request.method} {request.path}"})
        return handler(state, query, body)
    except ValueError as exc:
        return Response(400, {"error": str(exc)})


def _health(state: EmulatorState, query: dict[str, list[str]], body: dict[str, Any]) -> Response:
    return Response(
        200,
        {
            "ok": True,
            "url": state.base_url,
            "listening": state.listening,
            "outage": state.outage_mode(),
            "uptime_s": round(state.clock() - state.started_at, 3),
        },
    )


def _requests(state: EmulatorState, query: dict[str, list[str]], body: dict[str, Any]) -> Response:
    since = _int_param(query, "since", 0) or 0
    limit = _int_param(query, "limit", None)
    with state.lock:
        records = state.recorder.since(since, limit)
    records = [readable(r) for r in records]
    if query.get("format", ["json"])[0] == "jsonl":
        text = "".join(
            json.dumps(contract_line(r), ensure_ascii=False, separators=(",", ":")) + "\n"
            for r in records
        )
        return Response(200, raw=text.encode(), content_type="application/x-ndjson")
    return Response(200, records)


def _people(state: EmulatorState, query: dict[str, list[str]], body: dict[str, Any]) -> Response:
    with state.lock:
        people = [p.to_dict() for p in state.store.people.values()]
    return Response(200, people)


def _objects(state: EmulatorState, query: dict[str, list[str]], body: dict[str, Any]) -> Response:
    with state.lock:
        objects = [state.store.object_dict(o) for o in state.store.objects.values()]
    return Response(200, objects)


def _events(state: EmulatorState, query: dict[str, list[str]], body: dict[str, Any]) -> Response:
    since = _int_param(query, "since", 0) or 0
    limit = _int_param(query, "limit", None)
    with state.lock:
        store = state.store
        found = store.iter_events(since)
        if limit is not None:
            found = itertools.islice(found, max(limit, 0))
        events = [store.event_dict(e) for e in found]
    return Response(200, events)


def _counters(state: EmulatorState, query: dict[str, list[str]], body: dict[str, Any]) -> Response:
    return Response(200, state.counters_snapshot())


def _reset(state: EmulatorState, query: dict[str, list[str]], body: dict[str, Any]) -> Response:
    state.reset(faults=bool(body.get("faults")) or _truthy(query, "faults"))
    return Response(200, {"ok": True})


def _faults_view(state: EmulatorState) -> dict[str, Any]:
    config = state.faults
    with state.lock:
        remaining = state.injector.outage_remaining_s(state.clock())
    return {**config.to_dict(), "outage_remaining_s": remaining}


def _get_faults(
    state: EmulatorState, query: dict[str, list[str]], body: dict[str, Any]
) -> Response:
    return Response(200, _faults_view(state))


def _put_faults(
    state: EmulatorState, query: dict[str, list[str]], body: dict[str, Any]
) -> Response:
    body.pop("outage_remaining_s", None)
    if _truthy(query, "replace"):
        state.set_faults(FaultConfig.from_dict(body))
    else:
        state.merge_faults(body)
    return Response(200, _faults_view(state))


_ROUTES = {
    ("GET", "health"): _health,
    ("GET", "requests"): _requests,
    ("GET", "people"): _people,
    ("GET", "objects"): _objects,
    ("GET", "events"): _events,
    ("GET", "counters"): _counters,
    ("POST", "reset"): _reset,
    ("GET", "faults"): _get_faults,
    ("PUT", "faults"): _put_faults,
}
