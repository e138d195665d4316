"""The workflow page: the event catalogue with on/off switches, and one event's editor
(collect mode, callback, trigger paths, a "test a URL" check). Saves go through
``WorkflowStore.save`` with the version the form was based on, so a stale edit is refused."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from worker import catalogue
from worker.console import auth
from worker.console.templating import render
from worker.console.workflow_form import (
    ACTION_LABELS,
    COLLECT_LABELS,
    UrlVerdict,
    apply_toggles,
    catalogue_names,
    catalogue_row,
    event_spec,
    explain_url,
    form_paths,
    with_event,
)
from worker.errors import WorkflowError
from worker.workflow.loader import workflow_to_dict
from worker.workflow.model import MATCH_KINDS
from worker.workflow.store import StaleVersion, WorkflowStore

PAGE_SIZE = 200


def _store(request: Request) -> WorkflowStore:
    return WorkflowStore(request.app.state.redis, request.app.state.keys)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# -- the catalogue ------------------------------------------------------------------------


async def catalogue_page(request: Request) -> Response:
    auth.require(request)
    return _catalogue(request)


def _catalogue(
    request: Request, *, error: str | None = None, tried: list[str] | None = None, status: int = 200
) -> Response:
    store = _store(request)
    workflow, info = store.get(), store.info()
    seen = catalogue.read(request.app.state.redis, request.app.state.keys)
    names = catalogue_names(workflow, seen)
    query = request.query_params.get("q", "").strip()
    if query:
        folded = query.casefold()
        names = [n for n in names if folded in n.casefold()]
    pages = max(1, -(-len(names) // PAGE_SIZE))
    page = min(max(1, _int(request.query_params.get("page"), 1)), pages)
    shown = [
        catalogue_row(workflow, seen, n) for n in names[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    ]
    return render(
        request,
        "workflow.html",
        status,
        workflow=workflow,
        info=info,
        rows=shown,
        total=len(names),
        other=seen.get(catalogue.OTHER),
        cap=catalogue.CATALOGUE_MAX,
        query=query,
        page=page,
        pages=pages,
        saved=request.query_params.get("saved"),
        error=error,
        tried=tried or [],
        collect_labels=COLLECT_LABELS,
    )


async def save_toggles(request: Request) -> Response:
    user = auth.require(request, "editor")
    form = await auth.check_csrf(request)
    store = _store(request)
    based_on = _int(form.get("version"), -1)
    shown = [str(n) for n in form.getlist("shown")]
    on = {str(n) for n in form.getlist("on")}
    workflow, changes = apply_toggles(store.get(), shown, on)
    if not changes:
        return RedirectResponse(_back(form, "saved=none"), status_code=303)
    note = "; ".join(changes) if len(changes) <= 5 else f"{len(changes)} events switched"
    try:
        version = store.save(workflow, based_on=based_on, author=user.name, note=note)
    except StaleVersion as exc:
        return _catalogue(request, error=exc.reason, tried=changes, status=409)
    return RedirectResponse(_back(form, f"saved={version}"), status_code=303)


def _back(form: FormData, extra: str) -> str:
    """The catalogue page the form came from (filter and page kept), plus ``extra``."""
    params = [f"q={quote(str(form.get('q') or ''))}", f"page={_int(form.get('page'), 1)}"]
    return "/workflow?" + "&".join([*params, extra])


# -- one event ----------------------------------------------------------------------------


async def event_page(request: Request) -> Response:
    auth.require(request)
    name = request.query_params.get("name", "")
    if not name.strip():
        return RedirectResponse("/workflow", status_code=303)
    store = _store(request)
    workflow, info = store.get(), store.info()
    spec = workflow_to_dict(workflow)["events"].get(name)
    return _event(
        request,
        name,
        version=info.version,
        spec=spec or {"enabled": workflow.default == "on", "trigger_paths": []},
        listed=spec is not None,
        saved=request.query_params.get("saved"),
    )


def _event(request: Request, name: str, *, status: int = 200, **context: Any) -> Response:
    store = _store(request)
    seen = catalogue.read_one(request.app.state.redis, request.app.state.keys, name)
    context.setdefault("listed", name in store.get().events)
    return render(
        request,
        "workflow_event.html",
        status,
        name=name,
        info=store.info(),
        seen=seen,
        match_kinds=MATCH_KINDS,
        action_labels=ACTION_LABELS,
        collect_labels=COLLECT_LABELS,
        **context,
    )


async def event_post(request: Request) -> Response:
    """One form, several buttons: add or remove a trigger-path row (nothing saved), test a
    URL against the rules as edited, or save."""
    user = auth.require(request)
    form = await auth.check_csrf(request)
    name = str(form.get("name") or "")
    if not name.strip():
        return RedirectResponse("/workflow", status_code=303)
    op = str(form.get("op") or "")
    remove = form.get("remove")
    if op != "test":
        user = auth.require(request, "editor")
    store = _store(request)
    live = store.get()
    current = workflow_to_dict(live)["events"].get(name)
    if user.may("editor"):
        spec = event_spec(form, current)
    else:  # a viewer's form has no rule fields: test the live rule
        spec = dict(current or {"enabled": live.default == "on", "trigger_paths": []})
    version = _int(form.get("version"), -1)
    context: dict[str, Any] = {"version": version, "spec": spec, "unsaved": user.may("editor")}
    if op == "add":
        spec["trigger_paths"] = [
            *form_paths(form),
            {"pattern": "", "match": "exact", "action": "fire"},
        ]
        return _event(request, name, **context)
    if remove is not None:
        rows = form_paths(form)
        index = _int(remove, -1)
        spec["trigger_paths"] = [r for i, r in enumerate(rows) if i != index]
        return _event(request, name, **context)
    if op == "refresh":
        spec["trigger_paths"] = form_paths(form)
        return _event(request, name, **context)
    if op == "test":
        return _test_url(request, form, name, live, spec, context)
    try:
        edited = with_event(live, name, spec)
    except WorkflowError as exc:
        return _event(request, name, status=400, error=str(exc), **context)
    try:
        saved = store.save(edited, based_on=version, author=user.name, note=f"edited {name}")
    except StaleVersion as exc:
        context["version"] = store.version()
        return _event(request, name, status=409, error=exc.reason, stale=True, **context)
    return RedirectResponse(f"/workflow/event?name={quote(name)}&saved={saved}", status_code=303)


def _test_url(
    request: Request,
    form: FormData,
    name: str,
    live: Any,
    spec: dict[str, Any],
    context: dict[str, Any],
) -> Response:
    url = str(form.get("test_url") or "")
    kind = str(form.get("test_kind") or "client")
    verdict: UrlVerdict | None = None
    problem: str | None = None
    try:
        edited = with_event(live, name, spec)
    except WorkflowError as exc:
        problem = str(exc)
    else:
        verdict = explain_url(edited, name, url, kind)
    result = {"url": url, "kind": kind, "verdict": verdict, "problem": problem}
    if "hx-request" in request.headers:
        return render(request, "workflow_url_result.html", test=result)
    return _event(request, name, test=result, **context)


routes: list[BaseRoute] = [
    Route("/workflow", catalogue_page, methods=["GET"]),
    Route("/workflow", save_toggles, methods=["POST"]),
    Route("/workflow/event", event_page, methods=["GET"]),
    Route("/workflow/event", event_post, methods=["POST"]),
]
