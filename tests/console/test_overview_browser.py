"""Overview in a real browser against a running relay: Pause stops delivery, Resume lets
the held event through, both found by their accessible names."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, sign_in
from tests.console.relay_console import RelayConsole, relay_console
from tests.integration.conftest import emulator, wait_until
from worker import audit
from worker.producer import enqueue

__all__ = ["emulator", "relay_console"]


def test_pause_holds_delivery_and_resume_releases_it(
    relay_console: RelayConsole, new_page: Callable[[], Page]
) -> None:
    rc = relay_console
    page = sign_in(new_page(), rc.console, "editor", "/overview")
    expect(
        page.get_by_role(
            "img", name="Events per second and requests per second over the last 30 seconds"
        )
    ).to_be_visible()
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("paused by hand: console:editor")
    # A pause holds from the next read on: a drain blocked in a read (at most 0.25 s) may
    # still deliver what that read returns, so the held event comes after that.
    time.sleep(1)
    event = {
        "type": "track",
        "event": "Purchased",
        "messageId": "held-1",
        "context": {"traits": {"email": "held@example.com"}},
    }
    enqueue(rc.console.redis, event, prefix=rc.console.keys.prefix)
    try:
        time.sleep(3)
        assert rc.console.redis.get(rc.console.keys.paused) is not None, "the pause was lifted"
        assert not any("held@example.com" in str(e) for e in rc.emulator.events())
    except AssertionError:
        rc.console.redis.delete(rc.console.keys.paused)  # leave the shared relay running
        raise
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_visible()
    wait_until(
        lambda: any("held@example.com" in str(e) for e in rc.emulator.events()),
        30,
        "delivery after Resume",
    )


def test_pause_and_resume_buttons_switch_the_shared_pause_state(
    console_server: ConsoleServer, new_page: Callable[[], Page]
) -> None:
    page = new_page()
    violations: list[str] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    sign_in(page, console_server, "editor", "/overview")
    expect(page.locator("#chart-rates canvas")).to_have_count(1)  # uPlot drew under the CSP
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_text("Paused: paused by hand: console:editor")).to_be_visible()
    assert console_server.redis.get(console_server.keys.paused) is not None
    viewer = sign_in(new_page(), console_server, "viewer", "/overview")
    expect(viewer.get_by_text("Paused: paused by hand: console:editor")).to_be_visible()
    expect(viewer.get_by_role("button", name="Resume")).to_have_count(0)
    page.get_by_role("button", name="Resume", exact=True).click()
    expect(page.get_by_role("button", name="Pause", exact=True)).to_be_visible()
    assert console_server.redis.get(console_server.keys.paused) is None
    actions = [e.action for e in audit.read(console_server.redis, console_server.keys)]
    assert actions.index("resume") < actions.index("pause")  # newest first
    assert violations == []
