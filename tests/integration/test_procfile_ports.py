"""Under honcho, which gives every process a $PORT, Flower and metrics listen on theirs
when no CIO_FLOWER_PORT / CIO_METRICS_PORT is set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import ROOT, free_port, sigterm_and_wait, wait_until

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
PROCS = ("flower", "metrics")


def test_flower_and_metrics_listen_on_the_port_honcho_gives(
    relay_env: dict[str, str], tmp_path: Path
) -> None:
    base = free_port()
    env = {**relay_env, "PATH": f"{BIN}{os.pathsep}{relay_env.get('PATH', '')}"}
    log_path = tmp_path / "honcho.log"
    log = open(log_path, "wb")  # noqa: SIM115
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "start", "--no-colour", "-f", "Procfile", "-p", str(base), *PROCS],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(
            lambda: (
                "serving metrics on" in log_path.read_text()
                and "Visit me at" in log_path.read_text()
            ),
            60,
            "Flower and metrics to start",
        )
        out = log_path.read_text()
        metrics_port = int(re.findall(r"serving metrics on http://[\d.]+:(\d+)/", out)[0])
        flower_port = int(re.findall(r"Visit me at http://[\w.]+:(\d+)", out)[0])
        # honcho numbers $PORT from the base, 100 apart per process.
        given = {base + 100 * i for i in range(5)}
        assert {metrics_port, flower_port} <= given, (metrics_port, flower_port, base)
        assert metrics_port != flower_port
        metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert metrics.status_code == 200 and "cio_relay_redis_up 1.0" in metrics.text

        def flower_answers() -> bool:
            try:
                r = requests.get(f"http://127.0.0.1:{flower_port}/healthcheck", timeout=2)
            except requests.RequestException:
                return False
            return r.status_code == 200

        wait_until(flower_answers, 30, "Flower on honcho's port")
    finally:
        sigterm_and_wait(honcho, 30)
        log.close()
