"""History in a real browser: versions from the CLI and the console with author, time and
diff; rolling back makes a new version and is audited; a viewer cannot roll back."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, sign_in
from tests.console.test_workflow_browser import apply, store
from worker import audit


def test_roll_back_to_a_cli_version(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "History event", via_cli=True)
    applied = store(console_server).version()
    page = sign_in(new_page(), console_server, "editor")
    page.get_by_role("switch", name="History event").uncheck()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("Saved version")
    edited = store(console_server).version()
    page.get_by_role("link", name="History", exact=True).click()
    latest = page.get_by_role("region", name=f"Version {edited}")
    expect(latest).to_contain_text("By editor")
    expect(latest).to_contain_text("History event: off")
    expect(latest.get_by_label(f"Changes in version {edited}")).to_contain_text("enabled = false")
    older = page.get_by_role("region", name=f"Version {applied}", exact=True)
    expect(older).to_contain_text("By cli:")
    older.get_by_role("button", name="Roll back").click()
    expect(page.get_by_role("status")).to_contain_text(f"Rolled back to version {applied}")
    assert store(console_server).get().events["History event"].enabled is True
    [newest, *_] = store(console_server).history()
    assert (newest.version, newest.author) == (edited + 1, "editor")
    assert newest.note == f"rolled back to version {applied}"
    entry = audit.read(console_server.redis, console_server.keys, 1)[0]
    assert (entry.user, entry.action) == ("editor", "workflow.change")
    assert entry.detail["note"] == f"rolled back to version {applied}"


def test_viewer_cannot_roll_back(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "Viewer history")
    apply(console_server, tmp_path, "Viewer history", "Second")
    live = store(console_server).version()
    page = sign_in(new_page(), console_server, "viewer", "/history")
    expect(page.get_by_role("region", name=f"Version {live - 1}", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Roll back")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.input_value()
    form = {"csrf_token": token, "version": str(live - 1), "based_on": str(live)}
    assert page.request.post(console_server.url + "/history/rollback", form=form).status == 403
    assert store(console_server).version() == live


def test_cli_toggles_are_versions_by_the_os_user(console_server: ConsoleServer) -> None:
    done = console_server.cli("workflow", "disable", "Cli toggled")
    assert done.returncode == 0, done.stderr
    newest = store(console_server).history()[0]
    assert newest.author == f"cli:{getpass.getuser()}"
    assert newest.note == "disabled Cli toggled"
    assert newest.workflow["events"]["Cli toggled"]["enabled"] is False
