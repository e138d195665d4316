"""The history page (being built)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from worker.console import auth
from worker.console.templating import render


async def page(request: Request) -> Response:
    auth.require(request)
    return render(request, "placeholder.html", title="History")


routes: list[BaseRoute] = [Route("/history", page, methods=["GET"])]
