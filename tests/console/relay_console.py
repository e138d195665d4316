"""A relay (Celery worker and beat, against the emulator) and ``cio-relay console`` on the
same Redis prefix, for browser tests that watch real events go through the console."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from tests.console.conftest import ConsoleServer, add_users, running_console
from tests.integration.conftest import API_KEY, ROOT, SITE_ID, Relay, free_port, wait_until
from worker.emulator import EmulatorClient, EmulatorServer
from worker.keys import Keys


@dataclass
class RelayConsole:
    relay: Relay
    console: ConsoleServer
    emulator: EmulatorClient


_shared: list[RelayConsole] = []


@pytest.fixture(scope="module")
def relay_console(
    request: pytest.FixtureRequest,
    redis_server: str,
    emulator: EmulatorServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> RelayConsole:
    """A relay that dead-letters unidentified events, and a console over the same prefix:
    started once for the whole session (every module importing this fixture shares it, as
    starting them takes seconds) and stopped when the session ends."""
    if not _shared:
        started = _start(redis_server, emulator, tmp_path_factory)
        _shared.append(next(started))
        request.config.add_cleanup(lambda: next(started, None))
    return _shared[0]


def _start(
    redis_server: str, emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RelayConsole]:
    home = tmp_path_factory.mktemp("relay-console")
    prefix = f"rc{os.getpid()}x{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
    env.update(
        CIO_SITE_ID=SITE_ID,
        CIO_API_KEY=API_KEY,
        CIO_TRACK_URL=emulator.url,
        CIO_REDIS_URL=redis_server,
        CIO_REDIS_PREFIX=prefix,
        CIO_WORKFLOW_FILE=str(ROOT / "tests" / "integration" / "workflow.toml"),
        CIO_UNIDENTIFIED="dead_letter",
        CIO_TICK_S="0.3",
        CIO_DRAIN_BUDGET_S="2",
        CIO_RECLAIM_IDLE_S="5",
        CIO_LOG_FORMAT="json",
        CIO_CONSOLE_USERS_FILE=str(home / "users.toml"),
        PYTHONPATH=str(ROOT),
    )
    port = free_port()
    console = ConsoleServer(
        f"http://127.0.0.1:{port}",
        env,
        redis.Redis.from_url(redis_server),
        Keys(prefix),
        home / "console.log",
    )
    add_users(console)
    emulator_client = EmulatorClient(emulator.url)
    emulator_client.reset(faults=True)
    relay = Relay(env, home).start(concurrency=1)
    try:
        with running_console(console, port):
            wait_until(lambda: console.redis.exists(console.keys.workflow) == 1, 30, "the workflow")
            yield RelayConsole(relay, console, emulator_client)
    finally:
        relay.stop()
