"""Fixtures that start real processes: redis-server, the emulator, a Celery worker and beat."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from worker.emulator import EmulatorClient, EmulatorServer
from worker.keys import Keys
from worker.redisconn import local_server_argv

ROOT = Path(__file__).resolve().parents[2]
SITE_ID = "it-site"
API_KEY = "it-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


def inbox_empty(relay: Relay) -> bool:
    """Every entry ever enqueued has its final outcome (finished entries are deleted)."""
    return int(relay.redis.xlen(Keys(relay.prefix).inbox)) == 0


def sigterm_and_wait(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    """SIGTERM ``proc`` and return its exit code; SIGKILL it (and fail) if it outlives
    ``timeout_s``, so a test never leaves it behind."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of our own on a free port, with AOF; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    data = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        local_server_argv(binary, port, data),
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_until(up, 10, "redis-server to start")
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    """The Customer.io emulator over real HTTP on a free port."""
    server = EmulatorServer(site_id=SITE_ID, api_key=API_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def emulator_client(emulator: EmulatorServer) -> EmulatorClient:
    client = EmulatorClient(emulator.url)
    client.reset(faults=True)
    return client


@pytest.fixture
def relay_env(redis_server: str, emulator: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    """Environment for relay processes: a fresh prefix per test so tests never share state."""
    prefix = f"it{os.getpid()}x{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
    env.update(
        CIO_SITE_ID=SITE_ID,
        CIO_API_KEY=API_KEY,
        CIO_TRACK_URL=emulator.url,
        CIO_REDIS_URL=redis_server,
        CIO_REDIS_PREFIX=prefix,
        CIO_WORKFLOW_FILE=str(ROOT / "tests" / "integration" / "workflow.toml"),
        CIO_TICK_S="0.3",
        CIO_DRAIN_BUDGET_S="2",
        CIO_RECLAIM_IDLE_S="5",
        CIO_RETRY_BASE_S="0.2",
        CIO_RETRY_CAP_S="2",
        CIO_LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    return env


class Relay:
    """A running relay: Celery worker and beat processes with their log files."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis = redis.Redis.from_url(env["CIO_REDIS_URL"])
        self.prefix = env["CIO_REDIS_PREFIX"]
        self._celery = [sys.executable, "-m", "celery", "-A", "worker.app"]

    def start(self, concurrency: int = 2, *, beat: bool = True) -> Relay:
        """Spawn a worker (a replica) and, unless ``beat`` is False, a beat of its own."""
        n = len(self.procs)
        self.procs.append(
            self._spawn(
                [
                    *self._celery,
                    "worker",
                    "--loglevel=INFO",
                    f"--concurrency={concurrency}",
                    "-n",
                    f"w{n}-{self.prefix}@%h",
                    "--without-mingle",
                    "--without-gossip",
                ],
                f"worker{n}.log",
            )
        )
        if beat:
            self.start_beat(f"beat{n}")
        return self

    def start_beat(self, schedule: str) -> subprocess.Popen[bytes]:
        """Spawn a beat keeping its schedule in ``logdir/schedule`` (reuse it for a restart)."""
        n = len(self.procs)
        proc = self._spawn(
            [*self._celery, "beat", "--loglevel=INFO", "-s", str(self.logdir / schedule)],
            f"beat{n}.log",
        )
        self.procs.append(proc)
        return proc

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        out = open(self.logdir / log, "wb")  # noqa: SIM115
        return subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "worker.cli.main", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logdir.glob("*.log"))

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def relay(relay_env: dict[str, str], tmp_path: Path) -> Iterator[Relay]:
    """A relay (worker + beat) against the test redis-server and the emulator."""
    r = Relay(relay_env, tmp_path).start()
    yield r
    r.stop()
