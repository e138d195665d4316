"""Fixtures for the browser tracker tests: redis-server, the collector as a real process,
test pages served from a second origin (so CORS is real), and headless Debian Chromium."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.integration.conftest import (
    emulator,
    emulator_client,
    free_port,
    redis_server,
    relay_env,
    wait_until,
)
from worker.keys import Keys

# Fixtures shared with tests/integration: the session's redis-server, and the Customer.io
# emulator with a relay environment for the end-to-end consent test.
__all__ = ["emulator", "emulator_client", "redis_server", "relay_env"]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"
WORKFLOW = HERE / "workflow.toml"
WRITE_KEY = "browser-test-write-key"
SOURCE = "web"


def cli_argv() -> list[str]:
    """``cio-relay`` from the venv running the tests (the module when no script is there)."""
    script = Path(sys.executable).parent / "cio-relay"
    return [str(script)] if script.exists() else [sys.executable, "-m", "worker.cli.main"]


class Collector:
    """``cio-relay collect`` as a process group of its own, so a test can SIGKILL all of it
    and start it again on the same port."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Collector:
        out = open(self.log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*cli_argv(), "collect", "--port", str(self.port), "--workers", "1"],
            env=self.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self.healthy, 20, "the collector to answer /health")
        return self

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the collector exited: {self.log.read_text(errors='replace')}")
        try:
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """SIGKILL the whole process group (uvicorn's supervisor and its server process)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Entry:
    """One inbox entry: the stored event and the source it came from."""

    event: dict[str, Any]
    source: str
    source_kind: str


class Inbox:
    """What the collector stored in ``<prefix>:inbox``."""

    def __init__(self, url: str, prefix: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.key = Keys(prefix).inbox

    def entries(self) -> list[Entry]:
        return [
            Entry(json.loads(f[b"event"]), f[b"source"].decode(), f[b"source_kind"].decode())
            for _, f in self.redis.xrange(self.key)
        ]

    def of(self, anonymous_id: str) -> list[Entry]:
        """Entries of one visitor (Segment ``anonymousId`` or CustomerLabs' user id), in order."""
        return [
            e
            for e in self.entries()
            if anonymous_id in (e.event.get("anonymousId"), e.event.get("customerlabs_user_id"))
        ]

    def wait_for(
        self, anonymous_id: str, check: Callable[[list[Entry]], bool], what: str
    ) -> list[Entry]:
        """Poll until the visitor's entries satisfy ``check``; return them."""
        found: list[Entry] = []

        def ready() -> bool:
            found[:] = self.of(anonymous_id)
            return check(found)

        wait_until(ready, 20, what)
        return found


def name_of(event: dict[str, Any]) -> str | None:
    """The event's name as a test reads it: Segment ``event``/``name`` or ``event_name``."""
    return event.get("event") or event.get("event_name") or event.get("name")


class PageServer:
    """The shop's own origin: pages from ``pages/`` whatever the directory in the URL, with
    the tracker tag pointing at the collector. ``?keyattr=0`` leaves out data-write-key (the
    key then comes from the src alone); ``?auto=0`` turns off the page view on load."""

    def __init__(self, collector_url: str) -> None:
        collector = collector_url

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/favicon.ico":  # asked by every page; none here
                    self.send_response(204)
                    self.end_headers()
                    return
                page = PAGES / Path(parts.path).name
                if not page.is_file() or page.suffix != ".html":
                    self.send_error(404)
                    return
                query = parse_qs(parts.query)
                attrs = "" if query.get("keyattr") == ["0"] else f' data-write-key="{WRITE_KEY}"'
                if query.get("auto") == ["0"]:
                    attrs += ' data-auto-page="false"'
                tag = (
                    f'<script async src="{collector}/tracker.js?writeKey={WRITE_KEY}"'
                    f"{attrs}></script>"
                )
                body = page.read_text().replace("{{TRACKER_TAG}}", tag).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.origin + path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Site:
    """Everything a browser test needs: the collector, its inbox and the shop's pages."""

    collector: Collector
    inbox: Inbox
    pages: PageServer


@pytest.fixture(scope="module")
def site(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A collector with one client source allowing the page server's origin, and the test
    workflow applied to its Redis prefix."""
    tmp = tmp_path_factory.mktemp("browser")
    port = free_port()
    pages = PageServer(f"http://127.0.0.1:{port}")
    sources = tmp / "sources.toml"
    sources.write_text(
        f'[sources.{SOURCE}]\nkind = "client"\nwrite_key = "{WRITE_KEY}"\n'
        f'origins = ["{pages.origin}"]\n'
    )
    prefix = f"br{os.getpid()}x{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
    env.update(
        CIO_REDIS_URL=redis_server,
        CIO_REDIS_PREFIX=prefix,
        CIO_SOURCES_FILE=str(sources),
        CIO_WORKFLOW_FILE=str(WORKFLOW),
        CIO_LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    applied = subprocess.run(
        [*cli_argv(), "workflow", "apply", str(WORKFLOW)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr
    collector = Collector(env, port, tmp / "collector.log").start()
    try:
        yield Site(collector, Inbox(redis_server, prefix), pages)
    finally:
        collector.stop()
        pages.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh profile per test: no cookie, no localStorage, so a new anonymous id."""
    ctx = browser.new_context()
    try:
        yield ctx
    finally:
        ctx.close()


def open_page(
    context: BrowserContext,
    url: str,
    init_script: str | None = None,
    console: list[str] | None = None,
) -> Page:
    """Open ``url`` in a new tab (``init_script`` runs before the page's own scripts, console
    lines are appended to ``console``) and wait for the tracker to load."""
    page = context.new_page()
    if console is not None:
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    if init_script:
        page.add_init_script(init_script)
    page.goto(url)
    page.wait_for_function("window.cio && window.cio.VERSION")
    return page
