"""The workflow page (being built)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from worker.console import auth
from worker.console.templating import render


async def page(request: Request) -> Response:
    auth.require(request)
    return render(request, "placeholder.html", title="Workflow")


async def save(request: Request) -> Response:
    auth.require(request, "editor")
    await auth.check_csrf(request)
    return render(request, "placeholder.html", title="Workflow")


routes: list[BaseRoute] = [
    Route("/workflow", page, methods=["GET"]),
    Route("/workflow", save, methods=["POST"]),
]
