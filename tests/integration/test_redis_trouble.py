"""Redis refusing writes on a real redis-server: maxmemory reached with noeviction (OOM) and
a failed RDB save with stop-writes-on-bgsave-error (MISCONF).

While it lasts, `enqueue` (Python and CLI) and the collector refuse naming the cause,
`cio-relay check` and the metric name it too; the relay keeps running, and once Redis takes
writes again every event stored before is delivered, once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import requests

from tests.integration.collector_proc import CLIENT_KEY, Collector, basic, collector_env
from tests.integration.conftest import ROOT, Relay, free_port, inbox_empty, wait_until
from tests.integration.sentinel_cluster import RedisNode
from tests.integration.test_faults import delivered_ids, purchases
from tests.integration.test_metrics_endpoint import scrape
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import enqueue, enqueue_many
from worker.redisconn import Durability, refusal_cause

pytestmark = pytest.mark.integration

STORED = 300


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RedisNode]:
    # Protected configs let the test point `dir` somewhere an RDB save cannot be written.
    n = RedisNode(tmp_path, "solo", extra=("--enable-protected-configs", "yes")).start()
    yield n
    n.stop()


def oom(client: redis.Redis, node: RedisNode) -> Callable[[], None]:
    """maxmemory below what is used, with config/redis.conf's noeviction; returns the undo."""
    client.config_set("maxmemory", 1)
    return lambda: client.config_set("maxmemory", 0)


def misconf(client: redis.Redis, node: RedisNode) -> Callable[[], None]:
    """An RDB save that fails (its directory takes no files) while saves are configured and
    stop-writes-on-bgsave-error is on: Redis then refuses writes with MISCONF."""
    client.config_set("save", "3600 1")
    client.config_set("stop-writes-on-bgsave-error", "yes")
    client.config_set("dir", "/proc")
    client.bgsave()
    wait_until(lambda: _bgsave_status(client) == "err", 10, "the RDB save to fail")

    def undo() -> None:
        client.config_set("dir", str(node.dir))
        client.bgsave()
        wait_until(lambda: _bgsave_status(client) == "ok", 10, "an RDB save to succeed")
        client.config_set("save", "")

    return undo


def _bgsave_status(client: redis.Redis) -> str:
    info = client.info("persistence")
    if info.get("rdb_bgsave_in_progress"):
        return "running"
    return str(info.get("rdb_last_bgsave_status"))


@pytest.mark.parametrize(("cause", "trouble"), [("OOM", oom), ("MISCONF", misconf)])
def test_refused_writes_are_named_and_nothing_stored_is_lost(
    cause: str,
    trouble: Callable[[redis.Redis, RedisNode], Callable[[], None]],
    node: RedisNode,
    relay_env: dict[str, str],
    emulator_client: EmulatorClient,
    tmp_path: Path,
) -> None:
    url = f"redis://127.0.0.1:{node.port}/0"
    env = {**relay_env, "CIO_REDIS_URL": url, "CIO_BATCH_SIZE": "10"}
    prefix = env["CIO_REDIS_PREFIX"]
    client = node.client()
    emulator_client.set_faults(latency_ms=200)
    relay = Relay(env, tmp_path).start(concurrency=2)
    collector = Collector(collector_env(url, prefix, tmp_path), tmp_path).start()
    metrics_port = free_port()
    metrics_log = open(tmp_path / "metrics.log", "wb")  # noqa: SIM115
    metrics = subprocess.Popen(
        [sys.executable, "-m", "worker.cli.main", "metrics", "--port", str(metrics_port)],
        env=env,
        cwd=ROOT,
        stdout=metrics_log,
        stderr=subprocess.STDOUT,
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    events = tmp_path / "more.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in purchases(5, "refused")))
    undo: Callable[[], None] | None = None
    try:
        enqueue_many(client, purchases(STORED, "stored"), prefix=prefix, durability=Durability())
        wait_until(lambda: len(delivered_ids(emulator_client)) >= 20, 30, "delivery under way")
        wait_until(lambda: _up(metrics_url), 60, "the metrics endpoint")
        undo = trouble(client, node)

        with pytest.raises(redis.ResponseError) as caught:
            enqueue(client, purchases(1, "py")[0], prefix=prefix, durability=Durability())
        assert refusal_cause(caught.value) == cause

        refused = relay.cli("enqueue", "--no-progress", str(events))
        assert refused.returncode == 1
        assert f"Redis refused the write ({cause}:" in refused.stderr, refused.stderr

        answer = requests.post(
            f"{collector.url}/v1/batch",
            json={"batch": purchases(2, "http")},
            headers=basic(CLIENT_KEY),
            timeout=30,
        )
        assert answer.status_code == 503, answer.text
        assert cause in answer.json()["message"]

        check = relay.cli("check")
        redis_line = next(ln for ln in check.stdout.splitlines() if " redis " in ln)
        assert redis_line.startswith("FAIL"), check.stdout
        assert f"refusing writes ({cause}:" in redis_line
        assert check.returncode == 1

        samples = scrape(metrics_url)["cio_relay_redis_writes_refused"]
        assert samples == {(("cause", cause),): 1}

        undo()
        undo = None
        assert scrape(metrics_url)["cio_relay_redis_writes_refused"] == {(("cause", ""),): 0}
        emulator_client.set_faults(latency_ms=0)
        expected = {event_ulid(f"msg:stored-{i}") for i in range(STORED)}
        wait_until(
            lambda: expected <= set(delivered_ids(emulator_client)) and inbox_empty(relay),
            60,
            "every stored event delivered after Redis takes writes again",
        )
        delivered = delivered_ids(emulator_client)
        assert len(delivered) == len(set(delivered)) == STORED
        assert client.xlen(Keys(prefix).dlq) == 0
        check = relay.cli("check")
        assert next(ln for ln in check.stdout.splitlines() if " redis " in ln).startswith("ok")
    finally:
        if undo is not None:
            undo()
        metrics.terminate()
        metrics.wait(10)
        collector.kill()
        relay.stop()


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False
