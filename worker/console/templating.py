"""Jinja2 rendering for the console: autoescape on, the signed-in user and CSRF field in
every template."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from worker.console import auth

TEMPLATES = Path(__file__).parent / "templates"

# Navigation: (label, href); the labels are the accessible names the checks look for.
NAV = (
    ("Workflow", "/workflow"),
    ("Activity", "/activity"),
    ("Dead letters", "/dlq"),
    ("Overview", "/overview"),
    ("History", "/history"),
    ("Audit", "/audit"),
)


@pass_context
def csrf_field(ctx: Any) -> Markup:
    """The hidden input carrying this session's CSRF token; put it in every POST form."""
    token = auth.csrf_token(ctx["request"])
    return Markup('<input type="hidden" name="{}" value="{}">').format(auth.CSRF_FIELD, token)


def when(stamp: float | str | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (empty for none)."""
    if stamp in (None, ""):
        return ""
    return datetime.fromtimestamp(float(stamp), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals["csrf_field"] = csrf_field
env.globals["NAV"] = NAV
env.filters["when"] = when
env.filters["e"] = escape


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a template with ``request``, ``user`` and ``csrf_token`` in its context."""
    page = env.get_template(template).render(
        request=request,
        user=auth.current_user(request),
        csrf_token=auth.csrf_token(request),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(page, status_code=status_code, headers=headers)
