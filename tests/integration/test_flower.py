"""Flower, started as the relay starts it, shows the workers only to those with credentials."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.integration.conftest import ROOT, Relay, free_port, wait_until
from tests.integration.test_faults import purchases
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration

PASSWORD = "flower-secret-9f8e7d"


def test_flower_requires_credentials_and_lists_the_worker(relay: Relay) -> None:
    """With credentials the API lists the worker and relay tasks; without, it answers 401."""
    port = free_port()
    env = {
        **relay.env,
        "CIO_FLOWER_USER": "ops",
        "CIO_FLOWER_PASSWORD": PASSWORD,
        "CIO_FLOWER_PORT": str(port),
    }
    log = open(relay.logdir / "flower.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker.cli.main", "flower"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                requests.get(base, timeout=1)
                return True
            except requests.ConnectionError:
                return False

        wait_until(up, 30, "Flower to listen")
        enqueue_many(relay.redis, purchases(5, "flower"), prefix=relay.prefix)
        assert requests.get(f"{base}/api/workers", timeout=10).status_code == 401

        def worker_listed() -> bool:
            r = requests.get(f"{base}/api/workers?refresh=1", auth=("ops", PASSWORD), timeout=15)
            return r.status_code == 200 and any(relay.prefix in name for name in r.json())

        wait_until(worker_listed, 60, "the worker in Flower")

        def drain_seen() -> bool:
            r = requests.get(f"{base}/api/tasks", auth=("ops", PASSWORD), timeout=10)
            return r.status_code == 200 and any(
                t.get("name") == "relay.drain" for t in r.json().values()
            )

        wait_until(drain_seen, 60, "relay.drain tasks in Flower")
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    assert PASSWORD not in relay.logs()
