"""Consent in the browser tracker: the state ``_cl.trackConsent`` sets rides on every later
event, in the CustomerLabs and the Segment form, read back from the inbox and through the
relay's own normaliser (so the tracker writes what the relay reads); it survives a reload.
Last, a relay under ``[consent] missing = "deny"`` delivers the granted events and skips the
denied ones as consent_denied."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.conftest import (
    SOURCE,
    WRITE_KEY,
    Collector,
    Entry,
    Inbox,
    PageServer,
    Site,
    name_of,
    open_page,
)
from tests.integration.conftest import Relay, free_port, wait_until
from worker.emulator import EmulatorClient
from worker.keys import Keys
from worker.normalize import normalize

pytestmark = pytest.mark.integration


def flush(page: Page) -> None:
    assert page.evaluate("cio.flush()") is True


def anonymous_id(page: Page) -> str:
    anon = page.evaluate("cio.anonymousId()")
    assert isinstance(anon, str)
    return anon


def by_name(entries: list[Entry]) -> dict[str | None, dict[str, Any]]:
    return {name_of(e.event): e.event for e in entries}


def cl_consent(states: dict[str, bool]) -> dict[str, Any]:
    """``customProperties.consent`` as the tracker writes it."""
    return {
        "t": "object",
        "v": {k: {"t": "string", "v": "granted" if v else "denied"} for k, v in states.items()},
    }


def relay_reads(event: dict[str, Any]) -> tuple[str, dict[str, bool]] | None:
    """The consent the relay finds in a stored event: (format, category states), or None."""
    found = normalize(event, received_at=int(time.time())).consent
    return None if found is None else (found.format, dict(found.states))


def stored_consent(page: Page) -> Any:
    return json.loads(page.evaluate('localStorage.getItem("cio_consent") || "null"'))


def test_consent_queued_before_load_rides_on_every_later_event(
    site: Site, context: BrowserContext
) -> None:
    stub = """
    window._cl = [
      ["pageview", "Before consent", {}],
      ["trackConsent", {ad_user_data: "granted",
                        analytics_storage: {t: "string", v: " Denied "},
                        note: "not a consent value"}],
      ["track", "Purchased", {value: 30}],
      ["trackClick", "Wrapped", {customProperties: {t: "object",
                                 v: {currency: {t: "string", v: "EUR"}}}}],
      ["track", "Own consent", {consent: {t: "object",
                                v: {ad_user_data: {t: "string", v: "denied"}}}}]
    ];
    window.cio = [["track", "Queued cio call", {n: 1}]];
    """
    page = open_page(context, site.pages.url("/shop.html"), stub)
    page.evaluate('cio.page("After load")')
    flush(page)
    anon = anonymous_id(page)
    entries = site.inbox.wait_for(anon, lambda es: len(es) >= 7, "the queued calls")
    events = by_name(entries)
    assert list(events) == [
        "Before consent",
        "Consent updated",
        "Purchased",
        "Wrapped",
        "Own consent",
        "Queued cio call",
        "After load",
    ]
    granted_denied = {"ad_user_data": True, "analytics_storage": False}

    # Before the call: nothing attached.
    assert events["Before consent"]["properties"]["customProperties"] == {}
    assert relay_reads(events["Before consent"]) is None
    # The call's own event is sent as given; the relay reads its keys as its consent.
    assert events["Consent updated"]["properties"]["customProperties"] == {
        "ad_user_data": "granted",
        "analytics_storage": {"t": "string", "v": " Denied "},
        "note": "not a consent value",
    }
    assert relay_reads(events["Consent updated"]) == ("customerlabs", granted_denied)
    # Later CustomerLabs events carry it, inside a wrapped customProperties too.
    assert events["Purchased"]["properties"]["customProperties"] == {
        "value": 30,
        "consent": cl_consent(granted_denied),
    }
    assert relay_reads(events["Purchased"]) == ("customerlabs", granted_denied)
    assert events["Wrapped"]["properties"]["customProperties"] == {
        "t": "object",
        "v": {"currency": {"t": "string", "v": "EUR"}, "consent": cl_consent(granted_denied)},
    }
    assert relay_reads(events["Wrapped"]) == ("customerlabs", granted_denied)
    # An event with its own consent keeps it.
    assert events["Own consent"]["properties"]["customProperties"]["consent"] == {
        "t": "object",
        "v": {"ad_user_data": {"t": "string", "v": "denied"}},
    }
    assert relay_reads(events["Own consent"]) == ("customerlabs", {"ad_user_data": False})
    # cio.* calls, queued or not, carry it in the Segment form.
    for name in ("Queued cio call", "After load"):
        assert events[name]["context"]["consent"] == {"categoryPreferences": granted_denied}
        assert relay_reads(events[name]) == ("segment", granted_denied)
    assert stored_consent(page) == granted_denied


def test_consent_set_after_load_merges_and_survives_a_reload(
    site: Site, context: BrowserContext
) -> None:
    page = open_page(context, site.pages.url("/shop.html"))
    page.evaluate(
        """() => {
        _cl.trackConsent({ad_user_data: "granted", ad_storage: "denied"});
        cio.track("After first", {});
        _cl.track("After first by _cl", {});
        // A later call changes only the categories it names.
        _cl.trackConsent({customProperties: {ad_storage: {t: "boolean", v: true}}});
        cio.track("After second", {});
    }"""
    )
    flush(page)
    anon = anonymous_id(page)
    first = {"ad_user_data": True, "ad_storage": False}
    both = {"ad_user_data": True, "ad_storage": True}
    assert stored_consent(page) == both

    page.reload()
    page.wait_for_function("window.cio && window.cio.VERSION")
    page.evaluate('_cl.track("After reload", {})')
    flush(page)
    entries = site.inbox.wait_for(
        anon, lambda es: "After reload" in [name_of(e.event) for e in es], "the reloaded page"
    )
    page_views = [e.event for e in entries if e.event.get("type") == "page"]
    events = by_name(entries)

    assert len(page_views) == 2
    assert "consent" not in page_views[0]["context"]  # sent on load, before any consent
    assert relay_reads(page_views[0]) is None
    assert events["After first"]["context"]["consent"] == {"categoryPreferences": first}
    assert events["After first by _cl"]["properties"]["customProperties"] == {
        "consent": cl_consent(first)
    }
    assert relay_reads(events["After first by _cl"]) == ("customerlabs", first)
    assert events["After second"]["context"]["consent"] == {"categoryPreferences": both}
    # The next page starts with the stored state: its automatic page view carries it.
    assert page_views[1]["context"]["consent"] == {"categoryPreferences": both}
    assert relay_reads(page_views[1]) == ("segment", both)
    assert events["After reload"]["properties"]["customProperties"] == {"consent": cl_consent(both)}
    assert relay_reads(events["After reload"]) == ("customerlabs", both)


CONSENT_WORKFLOW = """
default = "on"
page_view_event = "Page viewed"

[consent]
required = ["ad_user_data"]
missing = "deny"

[events."Needs ad storage"]
consent = ["ad_storage"]

[events."Needs ad storage by _cl"]
consent = ["ad_storage"]
"""


@pytest.fixture
def relayed_site(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> Iterator[tuple[Site, Relay, EmulatorClient]]:
    """A collector and a relay (one worker process) on a fresh prefix under a workflow that
    requires ad_user_data with ``missing = "deny"``, and the shop's pages pointing at it."""
    port = free_port()
    pages = PageServer(f"http://127.0.0.1:{port}")
    workflow = tmp_path / "workflow.toml"
    workflow.write_text(CONSENT_WORKFLOW)
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[sources.{SOURCE}]\nkind = "client"\nwrite_key = "{WRITE_KEY}"\n'
        f'origins = ["{pages.origin}"]\n'
    )
    env = {**relay_env, "CIO_WORKFLOW_FILE": str(workflow), "CIO_SOURCES_FILE": str(sources)}
    relay = Relay(env, tmp_path)
    applied = relay.cli("workflow", "apply", str(workflow))
    assert applied.returncode == 0, applied.stderr
    collector = Collector(env, port, tmp_path / "collector.log").start()
    relay.start(concurrency=1)
    try:
        inbox = Inbox(env["CIO_REDIS_URL"], env["CIO_REDIS_PREFIX"])
        yield Site(collector, inbox, pages), relay, emulator_client
    finally:
        relay.stop()
        collector.stop()
        pages.stop()


def test_the_relay_delivers_granted_categories_and_skips_denied_ones(
    relayed_site: tuple[Site, Relay, EmulatorClient], context: BrowserContext
) -> None:
    site, relay, emulator = relayed_site
    page = open_page(context, site.pages.url("/shop.html"))  # a page view before any consent
    page.evaluate(
        """() => {
        _cl.trackConsent({ad_user_data: "granted", ad_storage: "denied"});
        cio.track("Granted event", {});
        _cl.track("Granted by _cl", {});
        cio.track("Needs ad storage", {});
        _cl.track("Needs ad storage by _cl", {});
    }"""
    )
    flush(page)
    keys = Keys(relay.prefix)

    def counts() -> dict[str, int]:
        return {k.decode(): int(v) for k, v in relay.redis.hgetall(keys.counters).items()}

    def settled() -> bool:
        final = sum(counts().get(k, 0) for k in ("delivered", "skipped", "dead"))
        return final >= 6 and relay.redis.xlen(keys.inbox) == 0

    wait_until(settled, 60, "six final outcomes")
    assert counts().get("dead", 0) == 0, relay.cli("dlq", "list").stdout
    assert counts()["delivered"] == 3
    assert counts()["skipped:consent_denied"] == 3
    arrived = {e["name"] for e in emulator.events()}
    assert {"Consent updated", "Granted event", "Granted by _cl"} <= arrived
    assert not {"Needs ad storage", "Needs ad storage by _cl", "Page viewed"} & arrived
