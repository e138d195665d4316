"""The console's ASGI app: routes gathered from the page modules, sessions, security headers.

Each page module exposes ``routes: list[BaseRoute]``; add a module's name to
``PAGE_MODULES`` to mount it. Endpoints find the relay through ``request.app.state``:
``settings`` (Settings), ``redis`` (a synchronous redis.Redis; one process serves a few
people, so short blocking calls are fine) and ``keys`` (Keys).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.console import auth
from worker.console.templating import render
from worker.keys import Keys
from worker.redisconn import connect
from worker.settings import Settings, load_settings

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "cio_console"
SESSION_MAX_AGE_S = 12 * 3600

PAGE_MODULES: tuple[str, ...] = (
    "worker.console.pages.login",
    "worker.console.pages.workflow",
    "worker.console.pages.history",
    "worker.console.pages.audit",
    *(f"worker.console.pages.{m}" for m in ("activity", "dlq", "overview", "test_event")),
)

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds CSP, X-Frame-Options, nosniff and Referrer-Policy to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Sessions:
    """Signed session cookies (httponly, SameSite=Lax) whose Secure flag is set when the
    request came over HTTPS, or always when CIO_CONSOLE_SECURE_COOKIES is true."""

    def __init__(self, app: ASGIApp, secret: str, always_secure: bool) -> None:
        options: dict[str, Any] = {
            "secret_key": secret,
            "session_cookie": SESSION_COOKIE,
            "max_age": SESSION_MAX_AGE_S,
            "same_site": "lax",
        }
        self.secure = SessionMiddleware(app, https_only=True, **options)
        self.plain = self.secure if always_secure else SessionMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = scope.get("scheme") in ("https", "wss")
        await (self.secure if secure else self.plain)(scope, receive, send)


async def home(request: Request) -> Response:
    auth.require(request)
    return RedirectResponse("/workflow", status_code=303)


async def needs_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, auth.NeedsLogin)
    return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)


TITLES = {401: "Sign in first", 403: "Not allowed", 404: "Not found", 429: "Too many attempts"}


async def http_error(request: Request, exc: Exception) -> Response:
    """HTTP errors as a page (or plain text for htmx and non-HTML clients)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=exc.headers)
    title = TITLES.get(exc.status_code, "Error")
    if "text/html" not in request.headers.get("accept", "") or "hx-request" in request.headers:
        return Response(str(exc.detail), exc.status_code, exc.headers, media_type="text/plain")
    return render(
        request,
        "error.html",
        exc.status_code,
        exc.headers,
        status=exc.status_code,
        title=title,
        message=exc.detail,
    )


def page_routes(modules: tuple[str, ...] = PAGE_MODULES) -> list[BaseRoute]:
    """Every route of every page module, in order."""
    routes: list[BaseRoute] = []
    for name in modules:
        routes.extend(importlib.import_module(name).routes)
    return routes


def create_app(settings: Settings | None = None, *, client: redis.Redis | None = None) -> Starlette:
    """The console app for ``settings`` (read from the environment when None)."""
    settings = settings or load_settings()
    client = client or connect(settings)
    keys = Keys(settings.redis_prefix)
    configured = settings.console_secret.get_secret_value() if settings.console_secret else None
    secret = auth.session_secret(client, keys, configured)
    routes: list[BaseRoute] = [
        Route("/", home),
        *page_routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(Sessions, secret=secret, always_secure=settings.console_secure_cookies),
        ],
        exception_handlers={auth.NeedsLogin: needs_login, HTTPException: http_error},
    )
    app.state.settings = settings
    app.state.redis = client
    app.state.keys = keys
    return app
