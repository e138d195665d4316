"""CIO_REDIS_MIN_REPLICAS: an acknowledgement means the replica holds the entry; with the
replica gone, enqueue, `cio-relay enqueue` and the collector refuse, naming the replicas."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.collector_proc import CLIENT_KEY, Collector, basic, collector_env
from tests.integration.conftest import ROOT, free_port
from tests.integration.sentinel_cluster import RedisNode
from tests.integration.test_faults import purchases
from worker.keys import Keys
from worker.producer import enqueue, enqueue_many
from worker.redisconn import Durability, TooFewReplicas

pytestmark = pytest.mark.integration

ONE_REPLICA = Durability(min_replicas=1, timeout_s=1)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisNode, RedisNode]]:
    primary = RedisNode(tmp_path, "primary").start()
    replica = RedisNode(tmp_path, "replica", replica_of=primary.port).start()
    primary.wait_replicas(1)
    try:
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def cli_enqueue(env: dict[str, str], path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli.main", "enqueue", "--no-progress", str(path)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # "fails within a minute"
    )


def test_acknowledged_means_on_the_replica_and_too_few_replicas_is_refused(
    pair: tuple[RedisNode, RedisNode], tmp_path: Path
) -> None:
    primary, replica = pair
    prefix = f"dur{free_port()}"
    inbox = Keys(prefix).inbox
    url = f"redis://127.0.0.1:{primary.port}/0"
    env = {
        **collector_env(url, prefix, tmp_path),
        "CIO_REDIS_MIN_REPLICAS": "1",
        "CIO_REDIS_REPLICA_TIMEOUT_S": "1",
    }
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in purchases(30, "cli")))
    collector = Collector(env, tmp_path).start()
    try:
        # With the replica up, every acknowledgement means the replica already has it.
        entry_id = enqueue(
            primary.client(), purchases(1, "one")[0], prefix=prefix, durability=ONE_REPLICA
        )
        assert replica.client().xrange(inbox, entry_id, entry_id)
        ids, _ = enqueue_many(
            primary.client(), purchases(2500, "many"), prefix=prefix, durability=ONE_REPLICA
        )
        assert len(ids) == 2500
        assert replica.client().xrange(inbox, ids[-1], ids[-1])
        done = cli_enqueue(env, events)
        assert done.returncode == 0, done.stderr
        assert "accepted 30" in done.stdout
        answer = requests.post(
            f"{collector.url}/v1/batch",
            json={"batch": purchases(3, "http")},
            headers=basic(CLIENT_KEY),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert replica.client().xlen(inbox) == primary.client().xlen(inbox) == 1 + 2500 + 30 + 3

        # Without the replica nothing is acknowledged, and each refusal says why.
        replica.kill()
        with pytest.raises(TooFewReplicas, match="replica"):
            enqueue(
                primary.client(), purchases(1, "lone")[0], prefix=prefix, durability=ONE_REPLICA
            )
        refused = cli_enqueue(env, events)
        assert refused.returncode == 1
        assert "only 0 of 1 replica" in refused.stderr, refused.stderr
        assert "0 events were acknowledged" in refused.stderr
        answer = requests.post(
            f"{collector.url}/v1/batch",
            json={"batch": purchases(3, "http2")},
            headers=basic(CLIENT_KEY),
            timeout=60,
        )
        assert answer.status_code == 503, answer.text
        assert answer.json()["success"] is False
        assert "replica" in answer.json()["message"]
        assert "Retry-After" in answer.headers
    finally:
        collector.kill()
