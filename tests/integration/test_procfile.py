"""The project's Procfile under honcho: it delivers (from Redis and from the collector),
Flower and metrics answer, SIGTERM ends all."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests

from tests.integration.conftest import API_KEY, ROOT, free_port, sigterm_and_wait, wait_until
from worker.emulator import EmulatorClient
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
FLOWER_PASSWORD = "procfile-flower-5e6f7a"
WRITE_KEY = "procfile-write-key-9a8b"


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def gone_soon(pgid: int) -> bool:
    """True once no process of the group ``pgid`` is left (waits up to 10 s)."""
    try:
        wait_until(lambda: not group_alive(pgid), 10, f"process group {pgid} to end")
    except AssertionError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether a live (not zombie) process is in the group ``pgid``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Fields after the command's closing parenthesis: state, ppid, pgrp, ...
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


def test_procfile_delivers_and_stops_on_sigterm(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    flower_port, metrics_port = free_port(), free_port()
    # Settings reach the processes two ways, as in production: honcho's env file and the
    # environment honcho itself was started with (relay_env, with the venv on PATH).
    sources = tmp_path / "sources.toml"
    sources.write_text(f'[sources.backend]\nkind = "server"\nwrite_key = "{WRITE_KEY}"\n')
    env_file = tmp_path / "procfile.env"
    env_file.write_text(
        f"CIO_FLOWER_PORT={flower_port}\n"
        f"CIO_METRICS_PORT={metrics_port}\n"
        f"BEAT_SCHEDULE_FILE={tmp_path / 'beat-schedule'}\n"
        "WORKER_CONCURRENCY=1\n"
        "CIO_FLOWER_USER=ops\n"
        f"CIO_FLOWER_PASSWORD={FLOWER_PASSWORD}\n"
        "CIO_COLLECT_ADDRESS=127.0.0.1\n"
        "CIO_COLLECT_WORKERS=1\n"
        f"CIO_SOURCES_FILE={sources}\n"
    )
    env = {**relay_env, "PATH": f"{BIN}{os.pathsep}{relay_env.get('PATH', '')}"}
    log_path = tmp_path / "honcho.log"
    log = open(log_path, "wb")  # noqa: SIM115
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "start", "--no-colour", "-f", "Procfile", "-e", str(env_file)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        flower = f"http://127.0.0.1:{flower_port}"
        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_until(lambda: answers(f"{flower}/healthcheck"), 60, "Flower to answer")
        wait_until(lambda: answers(metrics), 30, "the metrics endpoint to answer")

        events = [
            {
                "type": "track",
                "event": "Purchased",
                "userId": f"honcho-user-{i}",
                "messageId": f"honcho-{i}",
                "timestamp": "2026-03-02T10:15:00Z",
                "context": {"traits": {"email": f"honcho{i}@example.com"}},
            }
            for i in range(5)
        ]
        enqueue_many(
            redis.Redis.from_url(relay_env["CIO_REDIS_URL"]),
            events[:3],
            prefix=relay_env["CIO_REDIS_PREFIX"],
        )
        # The collector listens on the $PORT honcho gave it, as a Procfile host would.
        wait_until(lambda: "collecting on" in log_path.read_text(), 60, "the collector")
        collector = re.findall(r"collecting on (http://\S+)", log_path.read_text())[0]
        wait_until(lambda: answers(f"{collector}/health"), 30, "the collector to answer")
        for event in events[3:]:
            r = requests.post(f"{collector}/v1/track", json=event, auth=(WRITE_KEY, ""), timeout=10)
            assert r.json() == {"success": True}
        wait_until(lambda: len(emulator_client.events()) >= 5, 60, "5 events delivered")
        assert sorted(e["name"] for e in emulator_client.events()) == ["Purchased"] * 5

        def worker_listed() -> bool:
            r = requests.get(
                f"{flower}/api/workers?refresh=1", auth=("ops", FLOWER_PASSWORD), timeout=15
            )
            return r.status_code == 200 and bool(r.json())

        wait_until(worker_listed, 60, "the worker in Flower")
        wait_until(
            lambda: "cio_relay_delivered_total 5.0" in requests.get(metrics, timeout=5).text,
            30,
            "5 delivered in the metrics",
        )
        assert honcho.poll() is None, "a Procfile process stopped early"
    finally:
        try:
            code = sigterm_and_wait(honcho, 30)
        finally:
            log.close()
            out = log_path.read_text(errors="replace")
            started = {n: int(p) for n, p in re.findall(r"(\w+)\.1 started \(pid=(\d+)\)", out)}
            left = [n for n, pgid in started.items() if not gone_soon(pgid)]
            for name in left:  # never leave processes behind, even when the test fails
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(started[name], signal.SIGKILL)

    assert set(started) == {"worker", "beat", "flower", "metrics", "collect", "console"}, out
    assert left == [], out  # honcho starts each in its own session: none may outlive it
    assert code == 143, out  # honcho's status after a SIGTERM it handled
    assert "SIGKILL" not in out, out  # every process stopped on SIGTERM, none was killed
    # Honcho signals whole process groups: the worker's pool children must not die under
    # their task (the Procfile's REMAP_SIGTERM=SIGQUIT makes them leave SIGTERM to the parent).
    assert "WorkerLostError" not in out, out
    assert API_KEY not in out and FLOWER_PASSWORD not in out and WRITE_KEY not in out
