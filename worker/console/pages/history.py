"""The history page: every stored workflow version with author, time and its diff to the
version before, and ``Roll back`` to any of them (a new version, audited)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from worker.console import auth
from worker.console.templating import render
from worker.errors import WorkflowError
from worker.workflow.loader import dump_workflow, workflow_from_dict
from worker.workflow.store import StaleVersion, Version, WorkflowStore

PAGE_SIZE = 20


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a unified diff and its kind: "add", "del", "hunk" or "same"."""

    text: str
    kind: str


def as_toml(version: Version | None) -> list[str]:
    """A stored version as the TOML ``cio-relay workflow export`` prints."""
    if version is None:
        return []
    try:
        return dump_workflow(workflow_from_dict(version.workflow)).splitlines()
    except WorkflowError as exc:
        return [f"# unreadable: {exc}"]


def diff(before: Version | None, after: Version) -> list[DiffLine]:
    """What ``after`` changed relative to ``before`` (everything when there is none)."""
    old, new = as_toml(before), as_toml(after)
    label = f"version {before.version}" if before else "nothing"
    lines = []
    for text in difflib.unified_diff(old, new, label, f"version {after.version}", lineterm=""):
        if text.startswith(("+++", "---")):
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(text[:1], "same")
        lines.append(DiffLine(text, kind))
    return lines


def _store(request: Request) -> WorkflowStore:
    return WorkflowStore(request.app.state.redis, request.app.state.keys)


async def history_page(request: Request) -> Response:
    auth.require(request)
    return _history(request)


def _history(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    store = _store(request)
    versions = store.history()
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    start = (page - 1) * PAGE_SIZE
    shown = [
        (v, diff(versions[i + 1] if i + 1 < len(versions) else None, v))
        for i, v in enumerate(versions[start : start + PAGE_SIZE], start)
    ]
    return render(
        request,
        "history.html",
        status,
        shown=shown,
        info=store.info(),
        page=page,
        more=start + PAGE_SIZE < len(versions),
        rolled=request.query_params.get("rolled"),
        error=error,
    )


async def roll_back(request: Request) -> Response:
    user = auth.require(request, "editor")
    form = await auth.check_csrf(request)
    store = _store(request)
    try:
        target = int(str(form.get("version")))
        based_on = int(str(form.get("based_on")))
    except ValueError:
        return _history(request, error="no version to roll back to was given", status=400)
    version = store.at_version(target)
    if version is None:
        return _history(request, error=f"version {target} is no longer kept", status=404)
    try:
        workflow = workflow_from_dict(version.workflow)
        saved = store.save(
            workflow, based_on=based_on, author=user.name, note=f"rolled back to version {target}"
        )
    except StaleVersion as exc:
        return _history(request, error=exc.reason, status=409)
    except WorkflowError as exc:
        return _history(request, error=str(exc), status=400)
    return RedirectResponse(f"/history?rolled={target}&saved={saved}", status_code=303)


routes: list[BaseRoute] = [
    Route("/history", history_page, methods=["GET"]),
    Route("/history/rollback", roll_back, methods=["POST"]),
]
