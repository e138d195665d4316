"""Signing in and out in a real browser, found by accessible names."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, sign_in
from worker import audit


def test_unauthenticated_visit_goes_to_login_then_back(
    console_server: ConsoleServer, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    page.goto(console_server.url + "/history")
    expect(page).to_have_url(console_server.url + "/login?next=/history")
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    sign_in(page, console_server, "viewer", "/history")
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Workflow", "Activity", "Dead letters", "Overview", "History", "Audit"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_contain_text("viewer")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(console_server.url + "/login")
    page.goto(console_server.url + "/workflow")
    expect(page).to_have_url(console_server.url + "/login?next=/workflow")
    actions = [(e.user, e.action) for e in audit.read(console_server.redis, console_server.keys)]
    assert ("viewer", "login.failed") in actions
    assert ("viewer", "login") in actions and ("viewer", "logout") in actions
