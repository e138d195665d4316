"""Fixtures for the console's browser tests: our own redis-server, ``cio-relay console``
as a real process with users made by ``cio-relay console add-user``, and headless Debian
Chromium driven by accessible names."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.integration.conftest import free_port, redis_server, wait_until
from worker.keys import Keys

__all__ = ["redis_server"]

ROOT = Path(__file__).resolve().parents[2]
# Users every browser test can sign in as: name -> (role, password).
USERS = {
    "editor": ("editor", "editor-password-1"),
    "editor2": ("editor", "editor-password-2"),
    "viewer": ("viewer", "viewer-password-1"),
}


def cli_argv() -> list[str]:
    """``cio-relay`` from the venv running the tests (the module when no script is there)."""
    script = Path(sys.executable).parent / "cio-relay"
    return [str(script)] if script.exists() else [sys.executable, "-m", "worker.cli.main"]


@dataclass
class ConsoleServer:
    """A running ``cio-relay console``: its URL, environment, Redis and key names."""

    url: str
    env: dict[str, str]
    redis: redis.Redis
    keys: Keys
    log: Path

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``cio-relay ARGS`` against the same Redis and prefix."""
        return subprocess.run(
            [*cli_argv(), *args],
            env=self.env,
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture(scope="session")
def console_server(
    redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleServer]:
    """``cio-relay console`` on a free loopback port, one per test session."""
    home = tmp_path_factory.mktemp("console")
    prefix = f"con{os.getpid()}x{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
    env.update(
        CIO_REDIS_URL=redis_server,
        CIO_REDIS_PREFIX=prefix,
        CIO_CONSOLE_USERS_FILE=str(home / "users.toml"),
        CIO_LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    port = free_port()
    server = ConsoleServer(
        f"http://127.0.0.1:{port}",
        env,
        redis.Redis.from_url(redis_server),
        Keys(prefix),
        home / "console.log",
    )
    add_users(server)
    with running_console(server, port):
        yield server


def add_users(server: ConsoleServer) -> None:
    """Every user of USERS, added with ``cio-relay console add-user``, password unechoed."""
    for name, (role, password) in USERS.items():
        done = server.cli(
            "console", "add-user", name, "--role", role, "--password-stdin", stdin=password + "\n"
        )
        assert done.returncode == 0, done.stderr
        assert password not in done.stdout + done.stderr


@contextlib.contextmanager
def running_console(server: ConsoleServer, port: int) -> Iterator[None]:
    """``cio-relay console`` on ``port`` with the server's env, answering, until the block
    ends."""
    out = open(server.log, "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [*cli_argv(), "console", "--port", str(port)],
        env=server.env,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def up() -> bool:
        try:
            return requests.get(server.url + "/login", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(up, 30, "the console to answer")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one module: Playwright's sync API runs one instance per thread at a
    time, and other suites in the same test process (tests/browser, the SDK clients) start
    their own, so none may outlive its module."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[object]:
    """A factory of pages, each in a fresh browser context (its own cookies); keyword
    arguments go to ``new_context`` (e.g. ``java_script_enabled=False``)."""
    contexts = []

    def make(**options: object) -> Page:
        context = browser.new_context(**options)  # type: ignore[arg-type]
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Page, console: ConsoleServer, name: str, path: str = "/workflow") -> Page:
    """Sign ``name`` in through the login form, the way a person does."""
    page.goto(console.url + path)
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(USERS[name][1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(console.url + path)
    return page
