"""Redis restarted mid-run (with the recommended AOF settings): nothing enqueued is lost."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import ROOT, Relay, free_port, wait_until
from tests.integration.test_faults import delivered_ids, purchases
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration


class OwnRedis:
    """A redis-server this test may stop and start again on the same port and data dir."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.data = data
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                str(ROOT / "config" / "redis.conf"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(up, 10, "redis-server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def test_redis_restart_mid_run_loses_nothing(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    """Stopping and restarting Redis during delivery: every enqueued event arrives once."""
    own = OwnRedis(tmp_path)
    own.start()
    env = {**relay_env, "CIO_REDIS_URL": own.url, "CIO_BATCH_SIZE": "25"}
    emulator_client.set_faults(latency_ms=100)
    relay = Relay(env, tmp_path).start(concurrency=2)
    try:
        enqueue_many(relay.redis, purchases(600, "restart"), prefix=relay.prefix)
        wait_until(lambda: len(delivered_ids(emulator_client)) > 100, 60, "delivery under way")
        own.stop()
        own.start()
        emulator_client.set_faults(latency_ms=0)
        wait_until(lambda: len(set(delivered_ids(emulator_client))) >= 600, 120, "all events")
        assert sorted(set(delivered_ids(emulator_client))) == sorted(
            event_ulid(f"msg:restart-{i}") for i in range(600)
        )
        assert relay.redis.xlen(Keys(relay.prefix).dlq) == 0
    finally:
        relay.stop()
        own.stop()
