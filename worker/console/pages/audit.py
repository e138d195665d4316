"""The audit page: who did what and when (workflow changes, rollbacks, replays, purges,
pause/resume, sign-ins), newest first, from the same stream ``cio-relay audit`` prints."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from worker import audit
from worker.console import auth
from worker.console.templating import render

PAGE_SIZE = 100
STREAM_ID = re.compile(r"^\d+-\d+$")


async def audit_page(request: Request) -> Response:
    auth.require(request)
    before = request.query_params.get("before")
    if before is not None and not STREAM_ID.match(before):
        before = None
    entries = audit.read(request.app.state.redis, request.app.state.keys, PAGE_SIZE, before=before)
    rows = [(e, audit.describe(e.detail)) for e in entries]
    older = entries[-1].id if len(entries) == PAGE_SIZE else None
    return render(request, "audit.html", rows=rows, older=older, paged=before is not None)


routes: list[BaseRoute] = [Route("/audit", audit_page, methods=["GET"])]
