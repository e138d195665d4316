"""The browser tracker (/tracker.js) in headless Chromium, on pages of another origin, against
a real collector process; what it sent is read back from the Redis inbox."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.conftest import SOURCE, WRITE_KEY, Entry, Site, name_of, open_page

pytestmark = pytest.mark.integration

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
QUEUE_KEY = f"cio_queue:{WRITE_KEY}"


def flush(page: Page) -> None:
    """Send everything queued; the tracker says whether nothing is left (so every answer
    was a 2xx the page could read, which needs the collector's CORS headers)."""
    assert page.evaluate("cio.flush()") is True


def anonymous_id(page: Page) -> str:
    anon = page.evaluate("cio.anonymousId()")
    assert isinstance(anon, str)
    return anon


def names(entries: list[Entry]) -> list[str | None]:
    return [name_of(e.event) for e in entries]


def test_page_views_arrive_from_another_origin_as_the_client_source(
    site: Site, context: BrowserContext
) -> None:
    console: list[str] = []
    page = open_page(context, site.pages.url("/shop.html"), console=console)
    page.evaluate(
        """() => {
        cio.page("Pricing", {plan: "pro"});
        _cl.pageview("Product viewed", {customProperties: {product_id: {t: "string", v: "S-1"}}});
    }"""
    )
    flush(page)
    anon = anonymous_id(page)
    entries = site.inbox.wait_for(anon, lambda es: len(es) >= 3, "three page views")
    assert {(e.source, e.source_kind) for e in entries} == {(SOURCE, "client")}
    first, pricing, product = (e.event for e in entries)
    url = site.pages.url("/shop.html")
    # The page view sent on load, with no page code.
    assert first["type"] == "page"
    assert first["properties"]["url"] == url
    assert first["properties"]["path"] == "/shop.html"
    assert first["properties"]["title"] == "Test shop"
    assert first["context"]["page"]["url"] == url
    assert first["context"]["library"]["name"] == "cio-relay-tracker"
    assert "Chrome" in first["context"]["userAgent"]
    assert UUID.match(first["messageId"])
    assert first["timestamp"].endswith("Z")
    assert (pricing["type"], pricing["name"], pricing["properties"]["plan"]) == (
        "page",
        "Pricing",
        "pro",
    )
    assert product["method"] == "pageview"
    assert product["event_name"] == "Product viewed"
    assert product["properties"]["customProperties"]["product_id"] == {"t": "string", "v": "S-1"}
    assert product["context"]["page_url"] == url
    assert UUID.match(product["message_id"])
    assert not [line for line in console if line.startswith(("error", "warning"))], console


def test_batches_keep_to_the_collector_limits(site: Site, context: BrowserContext) -> None:
    # 45 small events go out in batches of at most 20; 18 events of ~30 KB (540 KB together,
    # over the 500 KB request limit) must be split by bytes, or the collector refuses them
    # with 413; one event over 32 KB is dropped in the browser with a warning.
    console: list[str] = []
    page = open_page(context, site.pages.url("/shop.html?auto=0"), console=console)
    page.evaluate(
        """() => {
        const filler = "x".repeat(30000);
        for (let i = 0; i < 18; i++) cio.track("Large", {i: i, filler: filler});
        for (let i = 0; i < 45; i++) cio.track("Small", {i: i});
        cio.track("Too large", {filler: "y".repeat(40000)});
        cio.track("Last", {});
    }"""
    )
    flush(page)
    anon = anonymous_id(page)
    entries = site.inbox.wait_for(anon, lambda es: "Last" in names(es), "the last event")
    assert names(entries).count("Small") == 45
    assert [e.event["properties"]["i"] for e in entries if name_of(e.event) == "Large"] == list(
        range(18)
    )
    assert "Too large" not in names(entries)
    assert any("warning" in line and "Too large" in line for line in console), console


def test_an_event_the_collector_refuses_costs_only_itself(
    site: Site, context: BrowserContext
) -> None:
    # Plain http sites have no crypto.randomUUID (secure contexts only): ids still are UUIDs.
    no_random_uuid = "delete Crypto.prototype.randomUUID;"
    console: list[str] = []
    page = open_page(context, site.pages.url("/shop.html?auto=0"), no_random_uuid, console)
    page.evaluate(
        """() => {
        cio.on("Broken", function (ev) { delete ev.anonymousId; return ev; });
        cio.track("Before", {});
        cio.track("Broken", {});
        cio.track("", {});
        cio.track("After", {});
    }"""
    )
    flush(page)
    anon = anonymous_id(page)
    assert UUID.match(anon)
    entries = site.inbox.wait_for(anon, lambda es: "After" in names(es), "the event after")
    assert names(entries) == ["Before", "After"]
    assert all(UUID.match(e.event["messageId"]) for e in entries)
    assert any("warning" in line and "400" in line for line in console), console


def test_cl_calls_queued_before_load_are_replayed_in_order(
    site: Site, context: BrowserContext
) -> None:
    stub = """
    window._cl = [
      ["pageview"],
      ["trackClick", "Added to cart", {
          customProperties: {currency: {t: "string", v: "EUR"}},
          productProperties: [{product_id: {t: "string", v: "S-1"},
                               product_price: {t: "number", v: "12.5"}}]}],
      ["identify", {customProperties: {
          user_traits: {t: "Object", v: {first_name: {t: "string", v: "Ada"}}},
          identify_by_email: {t: "string", v: "ada@example.com", ib: true}}}],
      ["trackConsent", {analytics: {t: "boolean", v: true}, ads: false}],
      ["track", "Purchased", {value: 30, order_id: "O-1"}]
    ];
    """
    page = open_page(context, site.pages.url("/shop.html"), stub)
    page.evaluate('cio.track("After the queue", {n: 1})')
    flush(page)
    anon = anonymous_id(page)
    entries = site.inbox.wait_for(anon, lambda es: len(es) >= 6, "the replayed queue")
    events = [e.event for e in entries]
    assert [(e.get("method") or e["type"], name_of(e)) for e in events] == [
        ("pageview", None),
        ("trackClick", "Added to cart"),
        ("identify", None),
        ("track", "Consent updated"),
        ("track", "Purchased"),
        ("track", "After the queue"),
    ]
    _, click, identify, consent, purchased, after = events
    # One anonymous id for the queued _cl calls and the cio call after load.
    assert {e["customerlabs_user_id"] for e in events[:5]} == {anon}
    assert after["anonymousId"] == anon
    # Properties pass through as given, wrapped or bare.
    assert click["properties"]["productProperties"][0]["product_price"] == {
        "t": "number",
        "v": "12.5",
    }
    assert click["properties"]["customProperties"]["currency"] == {"t": "string", "v": "EUR"}
    assert identify["properties"]["customProperties"]["identify_by_email"]["ib"] is True
    assert consent["properties"]["customProperties"] == {
        "analytics": {"t": "boolean", "v": True},
        "ads": False,
    }
    # The consent the queued trackConsent set rides on the event after it (not on those before).
    assert purchased["properties"]["customProperties"] == {
        "value": 30,
        "order_id": "O-1",
        "consent": {
            "t": "object",
            "v": {
                "analytics": {"t": "string", "v": "granted"},
                "ads": {"t": "string", "v": "denied"},
            },
        },
    }
    assert "consent" not in click["properties"]["customProperties"]
    assert after["context"]["consent"] == {"categoryPreferences": {"analytics": True, "ads": False}}
    for event in events[:5]:
        assert event["context"]["page_url"] == site.pages.url("/shop.html")
        assert event["context"]["user_agent"]
        assert UUID.match(event["message_id"])
    # The page queued its own page view, so none was added on load.
    assert not [e for e in events if e.get("type") == "page"]


def test_no_code_click_and_submit_events_fire_without_page_code(
    site: Site, context: BrowserContext
) -> None:
    page = open_page(context, site.pages.url("/shop.html"))
    assert page.evaluate("cio.ready") is True, "the tracker did not get /v1/config"
    page.click("button.add-to-cart b")  # a click inside the button counts for the button
    page.click("form.newsletter button[type=submit]")
    flush(page)
    anon = anonymous_id(page)
    entries = site.inbox.wait_for(
        anon,
        lambda es: {"Added to cart", "Newsletter signup"} <= set(names(es)),
        "the no-code events",
    )
    by_name = {name_of(e.event): e.event for e in entries}
    click = by_name["Added to cart"]
    assert click["type"] == "track"
    assert click["properties"] == {"selector": "button.add-to-cart", "text": "Add to cart"}
    submit = by_name["Newsletter signup"]
    assert submit["properties"]["selector"] == "form.newsletter"
    assert submit["properties"]["action"] == site.pages.url("/thanks.html")
    assert names(entries).count("Added to cart") == 1


def test_callbacks_change_one_event_drop_another_and_survive_an_exception(
    site: Site, context: BrowserContext
) -> None:
    # Registered through the cio stub before the tracker loads.
    stub = """
    window.cio = [
      ["on", "Added to cart", function (ev) {
          ev.properties.price = ev.properties.price * 2;
          ev.properties.changed = true;
          return ev; }],
      ["on", "*", function (ev) {
          return (ev.event || ev.event_name) === "Internal ping" ? null : ev; }],
      ["on", "Boom", function () { throw new Error("a bug in the page's callback"); }],
      ["on", "Page viewed", function (ev) { ev.properties.seen_by_callback = true; return ev; }],
      ["on", "Consent updated", function (ev) {
          ev.properties.customProperties.checked = {t: "boolean", v: true}; return ev; }]
    ];
    """
    console: list[str] = []
    page = open_page(context, site.pages.url("/shop.html"), stub, console)
    page.evaluate(
        """() => {
        cio.track("Added to cart", {price: 10});
        cio.track("Internal ping", {});
        _cl.track("Internal ping", {});
        cio.track("Boom", {x: 1});
        _cl.trackConsent({analytics: {t: "boolean", v: true}});
        cio.track("Kept", {});
    }"""
    )
    flush(page)
    anon = anonymous_id(page)
    entries = site.inbox.wait_for(anon, lambda es: "Kept" in names(es), "the kept event")
    by_name = {name_of(e.event): e.event for e in entries}
    assert by_name["Added to cart"]["properties"] == {"price": 20, "changed": True}
    assert "Internal ping" not in by_name
    assert by_name["Boom"]["properties"] == {"x": 1}
    assert any("error" in line and "Boom" in line for line in console), console
    consent = by_name["Consent updated"]["properties"]["customProperties"]
    assert consent == {
        "analytics": {"t": "boolean", "v": True},
        "checked": {"t": "boolean", "v": True},
    }
    page_view = next(e.event for e in entries if e.event.get("type") == "page")
    assert page_view["properties"]["seen_by_callback"] is True
    assert len(entries) == 5


BLOCK_BATCH_FETCH = """
window.__blocked = 0;
const realFetch = window.fetch;
window.fetch = function (url, options) {
  if (String(url).includes("/v1/batch")) {
    window.__blocked++;
    return Promise.reject(new TypeError("fetch to /v1/batch blocked by the test"));
  }
  return realFetch.apply(this, arguments);
};
"""


def test_events_are_sent_by_beacon_when_the_page_is_left(
    site: Site, context: BrowserContext
) -> None:
    # fetch() cannot deliver here, so whatever arrives came by navigator.sendBeacon.
    page = open_page(context, site.pages.url("/shop.html"), BLOCK_BATCH_FETCH)
    page.evaluate('cio.track("Left the page", {step: 3})')
    page.wait_for_function("window.__blocked >= 1")
    anon = anonymous_id(page)
    assert site.inbox.of(anon) == []
    page.goto(site.pages.url("/blank.html"))
    entries = site.inbox.wait_for(
        anon, lambda es: "Left the page" in names(es), "the beaconed event"
    )
    assert entries[-1].event["properties"] == {"step": 3}
    # The beacon's answer is invisible: the events stay stored for a later fetch to resend
    # (a duplicate the relay drops by messageId).
    stored = json.loads(page.evaluate(f"localStorage.getItem({json.dumps(QUEUE_KEY)})"))
    assert entries[-1].event["messageId"] in {e["messageId"] for e in stored}


COUNT_BATCH_FAILURES = """
window.__failures = 0;
const realFetch = window.fetch;
window.fetch = function (url, options) {
  const answer = realFetch.apply(this, arguments);
  if (String(url).includes("/v1/batch")) answer.catch(() => { window.__failures++; });
  return answer;
};
"""


def test_events_are_kept_and_retried_while_the_collector_is_down(
    site: Site, context: BrowserContext
) -> None:
    page = open_page(context, site.pages.url("/shop.html"), COUNT_BATCH_FAILURES)
    flush(page)
    anon = anonymous_id(page)
    try:
        site.collector.kill()
        page.evaluate('cio.track("While down", {n: 1})')
        page.wait_for_function("window.__failures >= 1")
        assert "While down" in page.evaluate(f"localStorage.getItem({json.dumps(QUEUE_KEY)})")
    finally:
        site.collector.start()
    site.inbox.wait_for(anon, lambda es: "While down" in names(es), "the retried event")
    page.wait_for_function(f"!localStorage.getItem({json.dumps(QUEUE_KEY)})")

    # Kept across a reload: stored while the collector is down, sent by the next page.
    try:
        site.collector.kill()
        failures = page.evaluate("window.__failures")
        page.evaluate('cio.track("Across a reload", {n: 2})')
        page.wait_for_function(f"window.__failures > {failures}")
        page.close()
    finally:
        site.collector.start()
    assert "Across a reload" not in names(site.inbox.of(anon))
    open_page(context, site.pages.url("/shop.html?auto=0"))
    site.inbox.wait_for(
        anon, lambda es: "Across a reload" in names(es), "the stored event after a reload"
    )


def test_trigger_paths_suppress_events_in_the_browser(site: Site, context: BrowserContext) -> None:
    # A glob's * crosses "/" as Python's fnmatch does: /checkout/* covers /checkout/step/2/.
    page = open_page(context, site.pages.url("/checkout/step/2/shop.html"))
    assert page.evaluate("cio.ready") is True
    page.click("button.add-to-cart")
    page.evaluate(
        """() => {
        cio.track("Added to cart", {via: "code"});
        _cl.trackClick("Added to cart", {customProperties: {}});
        cio.track("Promo seen", {});
        cio.track("Checkout control", {});
    }"""
    )
    flush(page)
    anon = anonymous_id(page)
    # The regex dont_fire rule looks at the whole URL; the prefix fire rule at the path.
    page.goto(site.pages.url("/promo/shop.html?utm_source=blocked"))
    page.wait_for_function("window.cio && window.cio.VERSION")
    page.evaluate('cio.track("Promo seen", {})')
    flush(page)
    page.goto(site.pages.url("/promo/shop.html?utm_source=mail"))
    page.wait_for_function("window.cio && window.cio.VERSION")
    page.evaluate('cio.track("Promo seen", {})')
    flush(page)
    entries = site.inbox.wait_for(
        anon,
        lambda es: "Checkout control" in names(es) and "Promo seen" in names(es),
        "the events the trigger paths let through",
    )
    assert "Added to cart" not in names(entries)
    promos = [e.event for e in entries if name_of(e.event) == "Promo seen"]
    assert [p["context"]["page"]["url"] for p in promos] == [
        site.pages.url("/promo/shop.html?utm_source=mail")
    ]
    # Page views have no trigger paths: one per page.
    assert len([e for e in entries if e.event.get("type") == "page"]) == 3


HANG_CONFIG_FETCH = """
const realFetch = window.fetch;
window.fetch = function (url, options) {
  if (String(url).includes("/v1/config")) return new Promise(() => {});
  return realFetch.apply(this, arguments);
};
"""


def test_events_wait_for_the_config_only_briefly(site: Site, context: BrowserContext) -> None:
    # /v1/config never answers: the events queued meanwhile are sent after the short wait,
    # trigger paths unapplied, and the relay decides.
    page = open_page(context, site.pages.url("/checkout/shop.html?auto=0"), HANG_CONFIG_FETCH)
    page.evaluate('cio.track("Added to cart", {via: "code"})')
    assert page.evaluate("cio.ready") is False
    flush(page)
    anon = anonymous_id(page)
    entries = site.inbox.wait_for(anon, lambda es: len(es) >= 1, "the event sent without config")
    assert names(entries) == ["Added to cart"]


def test_one_anonymous_id_across_page_loads_and_between_cio_and_cl(
    site: Site, context: BrowserContext
) -> None:
    page = open_page(context, site.pages.url("/shop.html"))
    anon = anonymous_id(page)
    assert UUID.match(anon)
    page.evaluate('cio.identify("user-42", {email: "ada@example.com"})')
    flush(page)
    cookie = {c["name"]: c["value"] for c in context.cookies()}.get("cio_anon")
    assert cookie == anon
    # The next page finds its key in the src alone; localStorage lost the id, the cookie not.
    page.evaluate('localStorage.removeItem("cio_anon")')
    page.goto(site.pages.url("/other/shop.html?keyattr=0&auto=0"))
    page.wait_for_function("window.cio && window.cio.VERSION")
    assert anonymous_id(page) == anon
    page.evaluate(
        """() => {
        cio.track("Second page", {});
        _cl.track("Second page by _cl", {});
    }"""
    )
    flush(page)
    entries = site.inbox.wait_for(
        anon, lambda es: "Second page by _cl" in names(es), "the second page's events"
    )
    by_name = {name_of(e.event): e.event for e in entries}
    identify = next(e.event for e in entries if e.event.get("type") == "identify")
    assert identify["userId"] == "user-42"
    assert identify["traits"] == {"email": "ada@example.com"}
    second = by_name["Second page"]
    assert (second["anonymousId"], second["userId"]) == (anon, "user-42")
    assert by_name["Second page by _cl"]["customerlabs_user_id"] == anon
