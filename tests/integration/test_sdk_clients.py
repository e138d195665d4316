"""Real clients nobody here wrote, unchanged, pointed at a real collector by their own host
setting: every call is accepted, stored as sent, and reaches the emulator (through the relay)
attributed to the right person, once; no write key is ever stored.

segment-analytics-python and rudder-sdk-python run in this process; @segment/analytics-node
runs under the machine's node; @segment/analytics-next runs in headless Chromium from a page
served by a real HTTP server on another origin, so its CORS preflights are real.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.integration.conftest import ROOT, Relay, free_port, wait_until
from worker.activity import recent
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys

pytestmark = pytest.mark.integration

CLIENTS = ROOT / "tests" / "clients"
NODE_MODULES = CLIENTS / "node_modules"
NPM_INSTALL = "npm ci --prefix tests/clients"
SERVER_KEY_ENV = "SDK_TEST_BACKEND_WRITE_KEY"
ORDER = "Order Completed"  # the track call every client makes
FINAL_OUTCOMES = ("delivered", "skipped", "dead")


def need_node_modules() -> None:
    """The npm clients are installed by CI; missing them is a failure, not a skip."""
    if (
        not (NODE_MODULES / "@segment" / "analytics-next").is_dir()
        or not (NODE_MODULES / "@segment" / "analytics-node").is_dir()
    ):
        pytest.fail(f"tests/clients/node_modules is missing: run `{NPM_INSTALL}` first")


# -- the stack: collector process, relay (started later), emulator ---------------------------


@dataclass
class Stack:
    """A collector on a free port, the relay that will drain its inbox, and the emulator."""

    url: str
    env: dict[str, str] = field(repr=False)
    relay: Relay
    emulator: EmulatorClient
    server_key: str = field(repr=False)
    client_key: str = field(repr=False)
    page_origin: str

    @property
    def keys(self) -> Keys:
        return Keys(self.relay.prefix)


class PageHandler(SimpleHTTPRequestHandler):
    """Serves tests/clients (the page and the npm builds) quietly."""

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def serve_pages() -> Iterator[str]:
    """A real HTTP server for the browser page, on its own port: an origin of its own."""
    handler = functools.partial(PageHandler, directory=str(CLIENTS))
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    """The origin the client source allows."""
    with serve_pages() as origin:
        yield origin


@pytest.fixture(scope="module")
def foreign_page_server() -> Iterator[str]:
    """The same page from an origin no source allows."""
    with serve_pages() as origin:
        yield origin


def sources_toml(client_key: str, origin: str) -> str:
    """A server source whose key comes from the environment, and a client source for the page."""
    return (
        "[sources.backend]\n"
        'kind = "server"\n'
        f'write_key_env = "{SERVER_KEY_ENV}"\n\n'
        "[sources.web]\n"
        'kind = "client"\n'
        f'write_key = "{client_key}"\n'
        f'origins = ["{origin}"]\n'
    )


@pytest.fixture
def stack(
    relay_env: dict[str, str],
    emulator_client: EmulatorClient,
    page_server: str,
    tmp_path: Path,
) -> Iterator[Stack]:
    """``cio-relay collect`` on a free port over a fresh prefix; the relay is not yet started,
    so a test can read the inbox exactly as the collector wrote it."""
    server_key = "srv-" + secrets.token_hex(16)
    client_key = "web-" + secrets.token_hex(16)
    sources = tmp_path / "sources.toml"
    sources.write_text(sources_toml(client_key, page_server))
    env = {
        **relay_env,
        "CIO_SOURCES_FILE": str(sources),
        "CIO_WORKFLOW_FILE": str(CLIENTS / "workflow.toml"),
        "CIO_IDENTIFY_BY": "identify_by_email",
        SERVER_KEY_ENV: server_key,
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "collector.log", "wb")  # noqa: SIM115
    collector = subprocess.Popen(
        [
            *(sys.executable, "-m", "worker.cli.main", "collect"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def healthy() -> bool:
        if collector.poll() is not None:
            output = (tmp_path / "collector.log").read_text()
            raise AssertionError(f"the collector exited: {output}")
        try:
            return requests.get(f"{url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    relay = Relay(env, tmp_path)
    try:
        wait_until(healthy, 20, "the collector to answer /health")
        yield Stack(url, env, relay, emulator_client, server_key, client_key, page_server)
    finally:
        relay.stop()
        if collector.poll() is None:
            os.killpg(collector.pid, signal.SIGTERM)
            try:
                collector.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(collector.pid, signal.SIGKILL)
                collector.wait(5)
        log.close()


# -- what the collector stored, and what became of it ----------------------------------------


@dataclass(frozen=True)
class Entry:
    """One inbox entry as the collector wrote it."""

    id: str
    fields: dict[str, str]
    event: dict[str, Any]


def inbox(stack: Stack) -> list[Entry]:
    """Every inbox entry: its id, its stream fields and its event."""
    rows = []
    for entry_id, fields in stack.relay.redis.xrange(stack.keys.inbox):
        text = {k.decode(): v.decode() for k, v in fields.items()}
        rows.append(Entry(entry_id.decode(), text, json.loads(text["event"])))
    return rows


def relay_everything(stack: Stack, count: int) -> list[dict[str, Any]]:
    """Start the relay, wait for ``count`` final outcomes and an empty inbox; the activity."""
    stack.relay.start(concurrency=1)
    redis = stack.relay.redis

    def settled() -> bool:
        counts = redis.hgetall(stack.keys.counters)
        done = sum(int(counts.get(k.encode(), 0)) for k in ("delivered", "skipped", "dead"))
        return done >= count and redis.xlen(stack.keys.inbox) == 0

    wait_until(settled, 60, f"{count} outcomes from the relay")
    return recent(redis, stack.keys, 200)


def stored_values(stack: Stack) -> Iterator[bytes]:
    """Every value under the test's prefix: streams, hashes, sets, lists and strings."""
    redis = stack.relay.redis
    for key in redis.scan_iter(match=f"{stack.relay.prefix}*", count=500):
        yield key
        kind = redis.type(key).decode()
        if kind == "stream":
            for _id, fields in redis.xrange(key):
                yield from (part for pair in fields.items() for part in pair)
        elif kind == "hash":
            yield from (part for pair in redis.hgetall(key).items() for part in pair)
        elif kind == "string":
            yield redis.get(key) or b""
        elif kind == "list":
            yield from redis.lrange(key, 0, -1)
        elif kind == "set":
            yield from redis.smembers(key)
        elif kind == "zset":
            yield from redis.zrange(key, 0, -1)


def assert_key_nowhere(stack: Stack, *keys: str) -> None:
    """No write key in Redis (inbox, DLQ, activity, anything) nor in any process's log."""
    values = list(stored_values(stack))
    logs = stack.relay.logs()
    for key in keys:
        assert not [v for v in values if key.encode() in v], "a write key is stored in Redis"
        assert key not in logs, "a write key is in a log"


def events_of(stack: Stack, email: str) -> list[dict[str, Any]]:
    """What "Customer.io" stored for the person with ``email``."""
    return [e for e in stack.emulator.events() if e["email"] == email]


def one(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The single event named ``name`` (each call must arrive exactly once)."""
    found = [e for e in events if e["name"] == name]
    assert len(found) == 1, f"{name!r} arrived {len(found)} times: {events}"
    return found[0]


def person(stack: Stack, email: str) -> dict[str, Any]:
    (found,) = [p for p in stack.emulator.people() if p["email"] == email]
    return found


def by_type(entries: list[Entry]) -> dict[str, dict[str, Any]]:
    """Inbox events by their Segment type, checking each type came once."""
    types = [e.event["type"] for e in entries]
    assert len(types) == len(set(types)), f"a call was stored twice: {types}"
    return {e.event["type"]: e.event for e in entries}


def check_accounted(entries: list[Entry], activity: list[dict[str, Any]]) -> None:
    """Each stored call has exactly one final outcome in the relay's activity: identify,
    track, page and screen delivered; group (object operations) and alias (a person merge,
    see ``worker.spec``) delivered, or else skipped or dead with a reason (an alias whose
    two ids already name one person is skipped as ``same_person``)."""
    final = {}
    for row in activity:
        if row.get("outcome") in FINAL_OUTCOMES:
            assert row["inbox_id"] not in final, f"two outcomes for one call: {activity}"
            final[row["inbox_id"]] = (row["outcome"], row.get("reason", ""))
    assert set(final) == {e.id for e in entries}, activity
    for entry in entries:
        kind = entry.event["type"]
        outcome, reason = final[entry.id]
        if kind in ("group", "alias"):
            assert outcome == "delivered" or reason, (kind, outcome, reason)
        else:
            assert (outcome, reason) == ("delivered", ""), (kind, outcome, reason)


def check_server_sdk_journey(
    stack: Stack, user: str, client: str, calls: tuple[str, ...], *, page_url: str | None
) -> None:
    """The common assertions for a server SDK that made ``calls`` for ``user``."""
    email = f"{user}@example.com"
    entries = inbox(stack)
    assert {e.fields["source"] for e in entries} == {"backend"}
    assert {e.fields["source_kind"] for e in entries} == {"server"}
    stored = by_type(entries)
    assert sorted(stored) == sorted(calls)
    for event in stored.values():
        assert "writeKey" not in event
        assert event["receivedAt"] and event["messageId"]
    assert stored["group"]["groupId"] == f"{user}-org"
    assert stored["alias"]["previousId"] == f"{user}-before"
    assert stored["alias"]["userId"] == user

    activity = relay_everything(stack, len(calls))
    events = events_of(stack, email)
    order = one(events, ORDER)
    assert order["type"] == "event"
    assert order["data"] == {"total": 42.5, "client": client}
    # The SDK's own messageId names the event, so an SDK retry de-duplicates.
    assert order["id"] == event_ulid(f"msg:{stored['track']['messageId']}")
    if page_url is not None:
        page = one(events, page_url)
        assert page["type"] == "page"
        assert page["data"]["name"] == "Shoes"
    if "screen" in calls:
        screen = one(events, "Screen viewed")
        assert screen["type"] == "screen"
        assert screen["data"]["items"] == 2
    assert len(events) == 1 + (page_url is not None) + ("screen" in calls)
    assert person(stack, email)["id"] is None
    check_accounted(entries, activity)
    assert_key_nowhere(stack, stack.server_key, stack.client_key)


# -- the clients -----------------------------------------------------------------------------


def test_segment_analytics_python(stack: Stack) -> None:
    """segment-analytics-python with ``host`` set: six calls, each answered 200."""
    from segment.analytics import Client

    user = "py-segment-" + secrets.token_hex(3)
    email = f"{user}@example.com"
    client = Client(write_key=stack.server_key, host=stack.url, sync_mode=True, max_retries=0)
    # sync_mode posts each call at once and raises APIError on any answer but 2xx.
    client.identify(user, {"email": email, "plan": "py-plan"})
    client.track(user, ORDER, {"total": 42.5, "client": "segment-python"})
    client.page(user, "Shop", "Shoes", {"url": f"https://shop.example.com/{user}/shoes"})
    client.screen(user, "App", "Basket", {"items": 2})
    client.group(user, f"{user}-org", {"name": "Acme"})
    client.alias(f"{user}-before", user)

    check_server_sdk_journey(
        stack,
        user,
        "segment-python",
        ("identify", "track", "page", "screen", "group", "alias"),
        page_url=f"https://shop.example.com/{user}/shoes",
    )
    assert person(stack, email)["attributes"]["plan"] == "py-plan"


def test_rudder_sdk_python(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """rudder-sdk-python's module API with ``dataPlaneUrl``: gzipped /v1/batch, identify
    traits in ``context.traits``."""
    import rudderstack.analytics as rudder_analytics

    monkeypatch.setattr(rudder_analytics, "write_key", stack.server_key)
    monkeypatch.setattr(rudder_analytics, "dataPlaneUrl", stack.url)
    monkeypatch.setattr(rudder_analytics, "sync_mode", True)
    monkeypatch.setattr(rudder_analytics, "max_retries", 0)
    monkeypatch.setattr(rudder_analytics, "default_client", None)
    user = "py-rudder-" + secrets.token_hex(3)
    email = f"{user}@example.com"
    rudder_analytics.identify(user, {"email": email, "plan": "rudder-plan"})
    rudder_analytics.track(user, ORDER, {"total": 42.5, "client": "rudder-python"})
    rudder_analytics.page(user, "Shop", "Shoes", {"url": f"https://shop.example.com/{user}/shoes"})
    rudder_analytics.screen(user, "App", "Basket", {"items": 2})
    rudder_analytics.group(user, f"{user}-org", {"name": "Acme"})
    rudder_analytics.alias(f"{user}-before", user)
    assert rudder_analytics.default_client.gzip is True

    identify = next(e.event for e in inbox(stack) if e.event["type"] == "identify")
    assert identify["context"]["traits"]["email"] == email
    check_server_sdk_journey(
        stack,
        user,
        "rudder-python",
        ("identify", "track", "page", "screen", "group", "alias"),
        page_url=f"https://shop.example.com/{user}/shoes",
    )
    assert person(stack, email)["attributes"]["plan"] == "rudder-plan"


def test_analytics_node(stack: Stack) -> None:
    """@segment/analytics-node with ``host``: one batch of six calls after closeAndFlush()."""
    need_node_modules()
    node = shutil.which("node")
    assert node, "node is not installed"
    user = "node-" + secrets.token_hex(3)
    run = subprocess.run(
        [node, str(CLIENTS / "analytics_node.mjs")],
        cwd=CLIENTS,
        env={
            "PATH": os.environ.get("PATH", ""),
            "COLLECTOR_URL": stack.url,
            "WRITE_KEY": stack.server_key,
            "CLIENT_USER": user,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert run.returncode == 0, (lines, run.stderr[-2000:])
    assert [line["status"] for line in lines] == [200], lines
    assert lines[0]["url"] == f"{stack.url}/v1/batch"

    check_server_sdk_journey(
        stack,
        user,
        "node",
        ("identify", "track", "page", "screen", "group", "alias"),
        page_url=f"https://shop.example.com/{user}/shoes",
    )
    assert person(stack, f"{user}@example.com")["attributes"]["plan"] == "node-plan"


def run_page(
    browser: Any, url: str, collector: str, settled: Callable[[list[Any], list[str]], bool]
) -> tuple[list[Any], list[tuple[str, str, int]], list[str]]:
    """Open the test page and wait for its calls, then until ``settled(finished, failed)``
    (the browser reports a request's end after the page saw its answer); the call results,
    the collector requests that finished (method, path, status) and those that failed."""
    page = browser.new_page()
    finished: list[tuple[str, str, int]] = []
    failed: list[str] = []

    def done(request: Any) -> None:
        if request.url.startswith(collector):
            response = request.response()
            finished.append((request.method, request.url.removeprefix(collector), response.status))

    def broken(request: Any) -> None:
        if request.url.startswith(collector):
            failed.append(f"{request.method} {request.url.removeprefix(collector)}")

    page.on("requestfinished", done)
    page.on("requestfailed", broken)
    page.goto(url)
    page.wait_for_function("window.__done === true", timeout=30_000)
    results = page.evaluate("window.__results")
    end = time.monotonic() + 10
    while not settled(finished, failed) and time.monotonic() < end:
        page.wait_for_timeout(50)  # lets Playwright deliver the pending request events
    page.close()
    return results, finished, failed


def calls_made(finished: list[tuple[str, str, int]]) -> list[str]:
    """The paths of the Segment calls (not analytics.js' own metrics at /v1/m) posted."""
    return sorted(path for method, path, _ in finished if method == "POST" and path != "/v1/m")


def test_analytics_next_in_chromium(stack: Stack, foreign_page_server: str) -> None:
    """@segment/analytics-next's browser build, from a page on another origin, through real
    CORS preflights (Basic auth, text/plain bodies to /v1/{i,t,p,g,a}); the same page from
    an origin the source does not list gets nothing stored."""
    need_node_modules()
    from playwright.sync_api import sync_playwright

    user = "web-" + secrets.token_hex(3)
    email = f"{user}@example.com"
    api_host = stack.url.removeprefix("http://") + "/v1"
    # The settings go in the fragment, which analytics-next leaves out of context.page.url.
    fragment = f"/browser.html#apiHost={api_host}&writeKey={stack.client_key}&user="
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            results, finished, failed = run_page(
                browser,
                stack.page_origin + fragment + user,
                stack.url,
                lambda finished, _failed: len(calls_made(finished)) >= 5,
            )
            _, foreign_finished, foreign_failed = run_page(
                browser,
                foreign_page_server + fragment + "intruder",
                stack.url,
                lambda _finished, failed: "POST /v1/i" in failed,
            )
        finally:
            browser.close()

    assert failed == [], failed
    assert results == [
        {"type": t, "failed": False, "reason": None}
        for t in ("identify", "track", "page", "group", "alias")
    ]
    assert calls_made(finished) == ["/v1/a", "/v1/g", "/v1/i", "/v1/p", "/v1/t"]
    assert {status for _m, _p, status in finished} == {200}
    # From a foreign origin the preflight is refused, so the browser never sends the POST.
    assert foreign_finished == []
    assert "POST /v1/i" in foreign_failed

    entries = inbox(stack)
    assert {e.fields["source"] for e in entries} == {"web"}
    assert {e.fields["source_kind"] for e in entries} == {"client"}
    stored = by_type(entries)
    assert sorted(stored) == ["alias", "group", "identify", "page", "track"]
    anonymous = stored["identify"]["anonymousId"]
    assert anonymous and all(e.get("anonymousId") == anonymous for e in stored.values())
    for event in stored.values():
        assert "writeKey" not in event
        assert event["context"]["page"]["url"] == f"{stack.page_origin}/browser.html"
    assert stored["track"]["userId"] == user
    assert stored["group"]["groupId"] == f"{user}-org"
    assert stored["alias"]["previousId"] == f"{user}-before"

    activity = relay_everything(stack, 5)
    events = events_of(stack, email)
    order = one(events, ORDER)
    assert order["data"] == {"total": 12.5, "client": "web"}
    assert order["id"] == event_ulid(f"msg:{stored['track']['messageId']}")
    page_seen = one(events, f"{stack.page_origin}/browser.html")
    assert page_seen["type"] == "page"
    assert page_seen["data"]["section"] == "shoes"
    assert len(events) == 2
    seen = person(stack, email)
    assert seen["attributes"]["plan"] == "web-plan"
    assert seen["attributes"]["anonymous_id"] == anonymous
    check_accounted(entries, activity)
    assert_key_nowhere(stack, stack.server_key, stack.client_key)
