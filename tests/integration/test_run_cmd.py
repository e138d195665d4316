"""``cio-relay run`` (what ``make run`` calls) over real processes: it stops what it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, free_port, wait_until
from tests.integration.test_faults import pool_children

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    """Running, not a zombie; gone is not alive even if it vanishes while we look."""
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return False


def test_sigint_stops_the_stack_even_when_started_as_a_background_job(
    relay_env: dict[str, str], tmp_path: Path
) -> None:
    """A shell starts background jobs with SIGINT ignored; ``kill -INT`` must still stop
    the worker, beat, collector and console ``run`` started, and ``run`` exits 0."""
    log = tmp_path / "run.log"
    run = ["run", "--no-flower", "--no-metrics", "--concurrency", "1"]
    started: list[int] = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker.cli.main", *run],
        env={
            **relay_env,
            "PYTHONPATH": str(ROOT),
            "CIO_COLLECT_PORT": str(free_port()),
            "CIO_COLLECT_WORKERS": "1",
            "CIO_CONSOLE_PORT": str(free_port()),
        },
        cwd=tmp_path,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        wait_until(lambda: "cio-relay is running" in log.read_text(), 60, "the stack")
        started[:] = pool_children(proc.pid)
        assert len(started) == 4, f"expected a worker, beat, collector and console: {started}"
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        left = [pid for pid in started if alive(pid)]
        assert left == [], f"still running after run exited: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in started:  # each child leads its own session: take its pool with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
