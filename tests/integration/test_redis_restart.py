"""Redis restarted mid-run (with the recommended AOF settings): nothing enqueued is lost."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import Relay, free_port, inbox_empty, wait_until
from tests.integration.live_producer import Producer
from tests.integration.test_faults import delivered_ids, purchases
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import enqueue_many
from worker.redisconn import local_server_argv

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
            local_server_argv(shutil.which("redis-server") or "redis-server", self.port, self.data),
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
    """Stopping and restarting Redis during delivery, with a producer enqueuing throughout:
    every event whose enqueue was acknowledged arrives, once."""
    own = OwnRedis(tmp_path)
    own.start()
    env = {**relay_env, "CIO_REDIS_URL": own.url, "CIO_BATCH_SIZE": "25"}
    emulator_client.set_faults(latency_ms=100)
    relay = Relay(env, tmp_path).start(concurrency=2)
    producer = Producer(own.url, relay.prefix, tag="live", pause_s=0.005)
    try:
        enqueue_many(relay.redis, purchases(600, "restart"), prefix=relay.prefix)
        producer.start()
        wait_until(lambda: len(delivered_ids(emulator_client)) > 100, 60, "delivery under way")
        own.stop()
        own.start()
        mark = len(producer.acknowledged)
        wait_until(lambda: len(producer.acknowledged) > mark + 50, 30, "enqueues after restart")
        producer.halt.set()
        producer.join(10)
        emulator_client.set_faults(latency_ms=0)
        acknowledged = {event_ulid(f"msg:restart-{i}") for i in range(600)}
        acknowledged |= {event_ulid(f"msg:live-{i}") for i in producer.acknowledged}
        tried = acknowledged | {event_ulid(f"msg:live-{i}") for i in range(producer.tried)}
        wait_until(
            lambda: acknowledged <= set(delivered_ids(emulator_client)) and inbox_empty(relay),
            120,
            "all acknowledged delivered and settled",
        )
        assert set(delivered_ids(emulator_client)) <= tried
        assert relay.redis.xlen(Keys(relay.prefix).dlq) == 0
    finally:
        producer.halt.set()
        relay.stop()
        own.stop()
