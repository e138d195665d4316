"""Activity in a real browser against a running relay: an event switched off shows up as
skipped (toggle_off) without reloading the page, filters narrow the list, a row opens."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.console.conftest import sign_in
from tests.console.relay_console import RelayConsole, relay_console
from tests.integration.conftest import emulator, wait_until
from worker.producer import enqueue

__all__ = ["emulator", "relay_console"]


def test_switched_off_event_appears_skipped_live(
    relay_console: RelayConsole, new_page: Callable[[], Page]
) -> None:
    rc = relay_console
    prefix = rc.console.keys.prefix
    enqueue(
        rc.console.redis,
        {
            "type": "track",
            "event": "Create user",
            "userId": "u-live",
            "context": {"traits": {"email": "live@example.com"}},
        },
        prefix=prefix,
    )
    wait_until(lambda: any(e.get("name") == "Create user" for e in rc.emulator.events()), 30)
    page = new_page()
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    sign_in(page, rc.console, "viewer", "/activity")
    rows = page.get_by_role("row").filter(has_text="Create user")
    # The relay and console are shared by the session's console tests: count this test's own.
    expect(rows.filter(has_text="live@example.com").filter(has_text="delivered")).to_have_count(1)
    skipped_before = rows.filter(has_text="toggle_off").count()

    done = rc.console.cli("workflow", "disable", "Create user")
    assert done.returncode == 0, done.stderr
    enqueue(
        rc.console.redis,
        {
            "type": "track",
            "event": "Create user",
            "userId": "u-live2",
            "context": {"traits": {"email": "l2@example.com"}},
        },
        prefix=prefix,
    )
    # No reload: the page polls for new entries.
    skipped = rows.filter(has_text="toggle_off")
    expect(skipped).to_have_count(skipped_before + 1, timeout=20_000)
    expect(skipped.first).to_contain_text("skipped")

    page.get_by_label("Outcome").select_option("skipped")
    page.get_by_label("Event name").fill("Create user")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("row").filter(has_text="Create user")).to_have_count(skipped_before + 1)
    page.get_by_role("row").filter(has_text="toggle_off").first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Activity entry")).to_be_visible()
    expect(page.get_by_role("row", name="Reason")).to_contain_text("toggle_off")
    assert violations == []
    # The workflow is shared with the session's other console tests: put it back.
    assert rc.console.cli("workflow", "enable", "Create user").returncode == 0
