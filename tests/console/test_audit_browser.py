"""The audit log in a real browser and from ``cio-relay audit``: sign-ins (never the
password) and workflow changes, attacker-chosen user names shown as text."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import USERS, ConsoleServer, sign_in
from tests.console.test_workflow_browser import apply

HOSTILE = "<script>alert('x')</script>"


def test_audit_page_and_cli_show_sign_ins_and_changes(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "Audited event", via_cli=True)
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(console_server.url + "/login")
    page.get_by_label("Username").fill(HOSTILE)
    page.get_by_label("Password").fill("secret-guess-123")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    sign_in(page, console_server, "editor", "/audit")
    table = page.get_by_role("table", name="Audit entries")
    first = table.get_by_role("row").nth(1)
    expect(first).to_contain_text("editor")
    expect(first).to_contain_text("login")
    expect(table.get_by_role("cell", name=HOSTILE, exact=True)).to_be_visible()
    expect(table).to_contain_text("workflow.change")
    assert dialogs == []
    assert "secret-guess-123" not in page.content()

    done = console_server.cli("audit", "--json", "-n", "50")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert (rows[0]["user"], rows[0]["action"]) == ("editor", "login")
    assert (rows[1]["user"], rows[1]["action"]) == (HOSTILE, "login.failed")
    changes = [r for r in rows if r["action"] == "workflow.change"]
    assert changes and changes[0]["user"].startswith("cli:")
    assert changes[0]["detail"]["note"] == "applied workflow.toml"
    text = done.stdout + console_server.cli("audit").stdout
    assert "secret-guess-123" not in text
    assert all(password not in text for _, password in USERS.values())
