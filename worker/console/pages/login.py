"""Sign in and sign out; every attempt is audited (never the password) and throttled per
user and address."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from worker import audit
from worker.console import auth
from worker.console.templating import render


def _safe_next(target: str | None) -> str:
    """Only a local path (never ``//host`` or a full URL) is followed after signing in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/workflow"


async def login_form(request: Request) -> Response:
    if auth.current_user(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _page(request, request.query_params.get("next"))


def _page(
    request: Request, next_path: str | None, error: str | None = None, status: int = 200
) -> Response:
    users = auth.read_users(auth.users_file(request))
    return render(
        request,
        "login.html",
        status,
        next=_safe_next(next_path),
        error=error,
        no_users=not users,
    )


async def login(request: Request) -> Response:
    form = await auth.check_csrf(request)
    state = request.app.state
    name = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_path = str(form.get("next", ""))
    address = auth.client_address(request)
    wait = auth.login_blocked(state.redis, state.keys, name, address)
    if wait:
        audit.record(state.redis, state.keys, name, "login.throttled", {"address": address})
        message = f"Too many failed sign-ins. Try again in {wait} seconds."
        return _page(request, next_path, message, 429)
    user = auth.verify(auth.read_users(auth.users_file(request)), name, password)
    if user is None:
        auth.note_failure(state.redis, state.keys, name, address)
        audit.record(state.redis, state.keys, name, "login.failed", {"address": address})
        return _page(request, next_path, "Wrong username or password.", 401)
    auth.clear_failures(state.redis, state.keys, name, address)
    auth.sign_in(request, user)
    audit.record(state.redis, state.keys, user.name, "login", {"address": address})
    return RedirectResponse(_safe_next(next_path), status_code=303)


async def logout(request: Request) -> Response:
    await auth.check_csrf(request)
    user = auth.current_user(request)
    if user is not None:
        state = request.app.state
        audit.record(state.redis, state.keys, user.name, "logout", {})
    auth.sign_out(request)
    return RedirectResponse("/login", status_code=303)


routes: list[BaseRoute] = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
