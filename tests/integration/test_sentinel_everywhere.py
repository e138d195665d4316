"""With CIO_REDIS_SENTINELS set, every Redis user finds the primary through Sentinel.

The URL in CIO_REDIS_URL names a closed port, so any process that dialled it instead of
asking the Sentinels would fail; its db number still applies.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.collector_proc import CLIENT_KEY, Collector, basic, collector_env
from tests.integration.conftest import ROOT, Relay, free_port, wait_until
from tests.integration.sentinel_cluster import Cluster
from tests.integration.test_faults import delivered_ids, purchases
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.redisconn import connect
from worker.settings import Settings

pytestmark = pytest.mark.integration

DB = 3
FLOWER_PASSWORD = "flower-ha-5e4d3c"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "ha").start()
    yield c
    c.stop()


def test_every_redis_user_goes_through_sentinel(
    cluster: Cluster, relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    """Worker, beat (Celery's broker too), `cio-relay enqueue`, `check`, the collector and
    Flower all work with only Sentinels to find Redis, in the URL's db."""
    env = {**relay_env, **cluster.env(db=DB)}
    prefix = env["CIO_REDIS_PREFIX"]
    relay = Relay(env, tmp_path)
    collector = Collector(
        {**collector_env(env["CIO_REDIS_URL"], prefix, tmp_path), **cluster.env(db=DB)}, tmp_path
    )
    flower_port = free_port()
    flower: subprocess.Popen[bytes] | None = None
    try:
        relay.start(concurrency=2)
        events = tmp_path / "events.jsonl"
        events.write_text("".join(json.dumps(e) + "\n" for e in purchases(20, "cli")))
        done = relay.cli("enqueue", "--no-progress", str(events))
        assert done.returncode == 0, done.stderr
        assert "accepted 20" in done.stdout

        collector.start()
        batch = {"batch": purchases(5, "http")}
        answer = requests.post(
            f"{collector.url}/v1/batch", json=batch, headers=basic(CLIENT_KEY), timeout=10
        )
        assert answer.status_code == 200, answer.text

        flower_log = open(tmp_path / "flower.log", "wb")  # noqa: SIM115
        flower = subprocess.Popen(
            [sys.executable, "-m", "worker.cli.main", "flower"],
            env={
                **env,
                "CIO_FLOWER_PORT": str(flower_port),
                "CIO_FLOWER_USER": "ops",
                "CIO_FLOWER_PASSWORD": FLOWER_PASSWORD,
            },
            cwd=ROOT,
            stdout=flower_log,
            stderr=subprocess.STDOUT,
        )
        expected = {event_ulid(f"msg:cli-{i}") for i in range(20)}
        expected |= {event_ulid(f"msg:http-{i}") for i in range(5)}
        wait_until(
            lambda: expected <= set(delivered_ids(emulator_client)), 60, "every event delivered"
        )
        assert len(delivered_ids(emulator_client)) == 25

        check = relay.cli("check")
        redis_line = next(ln for ln in check.stdout.splitlines() if " redis " in ln)
        assert redis_line.startswith("ok"), check.stdout + check.stderr
        assert "workers" in check.stdout and check.returncode == 0, check.stdout

        def flower_lists_worker() -> bool:
            try:
                r = requests.get(
                    f"http://127.0.0.1:{flower_port}/api/workers?refresh=1",
                    auth=("ops", FLOWER_PASSWORD),
                    timeout=10,
                )
            except requests.RequestException:
                return False
            return r.status_code == 200 and any(prefix in name for name in r.json())

        wait_until(flower_lists_worker, 45, "the worker listed by Flower over the Sentinel broker")
        # Flower's broker view reads queue lengths through its own Sentinel client.
        queues = requests.get(
            f"http://127.0.0.1:{flower_port}/api/queues/length",
            auth=("ops", FLOWER_PASSWORD),
            timeout=10,
        )
        assert queues.status_code == 200, queues.text

        # Everything lives in the URL's db on the primary, nothing on db 0.
        settings = Settings(redis_url=env["CIO_REDIS_URL"], **_sentinel_settings(env))
        assert connect(settings).exists(Keys(prefix).counters) == 1
        assert cluster.primary.client().keys(f"{prefix}:*") == []
        assert relay.logs().count("Connection refused") == 0
    finally:
        if flower is not None:
            flower.terminate()
            flower.wait(20)
        collector.kill()
        relay.stop()


def _sentinel_settings(env: dict[str, str]) -> dict[str, str]:
    return {
        "redis_sentinels": env["CIO_REDIS_SENTINELS"],
        "redis_master_name": env["CIO_REDIS_MASTER_NAME"],
    }
