"""The API key and the Flower password never leave the environment: the whole stack is run
through deliveries, retries, 429s, dead letters, a 401 pause and a bad setting, then every
log line, every Redis value under the prefix, every CLI output, Flower's API answers and
the emulator's records are searched for them."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
import redis
import requests

from tests.integration.conftest import API_KEY, ROOT, SITE_ID, Relay, free_port, wait_until
from tests.integration.test_faults import purchases
from worker.emulator import EmulatorClient
from worker.keys import Keys
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration

PASSWORD = "flower-pw-5c4b3a2918"
SECRETS = (
    API_KEY,
    PASSWORD,
    base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode(),
    base64.b64encode(f"ops:{PASSWORD}".encode()).decode(),
)


def redis_dump(client: redis.Redis, prefix: str) -> str:
    """Every value stored under the prefix (relay keys and the Celery broker's), as text."""
    parts: list[str] = []
    for key in client.scan_iter(f"{prefix}*"):
        kind = client.type(key).decode()
        if kind == "string":
            parts.append(repr(client.get(key)))
        elif kind == "hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == "list":
            parts.append(repr(client.lrange(key, 0, -1)))
        elif kind == "set":
            parts.append(repr(client.smembers(key)))
        elif kind == "zset":
            parts.append(repr(client.zrange(key, 0, -1, withscores=True)))
        elif kind == "stream":
            parts.append(repr(client.xrange(key)))
        parts.append(repr(key))
    return "\n".join(parts)


def leaks(text: str) -> list[str]:
    return [s[:6] + "…" for s in SECRETS if s in text]


def test_no_secret_in_logs_redis_cli_flower_or_requests(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path
) -> None:
    """Known API key and Flower password, given to every process as in production."""
    port = free_port()
    env = {
        **relay_env,
        "CIO_FLOWER_USER": "ops",
        "CIO_FLOWER_PASSWORD": PASSWORD,
        "CIO_FLOWER_PORT": str(port),
        "CIO_LOG_LEVEL": "DEBUG",
    }
    relay = Relay(env, tmp_path).start()
    flower_log = open(tmp_path / "flower.log", "wb")  # noqa: SIM115
    relay.procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "worker.cli.main", "flower"],
            env=env,
            cwd=ROOT,
            stdout=flower_log,
            stderr=subprocess.STDOUT,
        )
    )
    keys = Keys(relay.prefix)
    seen: list[str] = []
    try:
        # Deliveries through random 5xx and 429s, a poison 400, garbage.
        emulator_client.set_faults(
            error_rates={503: 0.2, 500: 0.1},
            seed=3,
            rate_limit_rps=20,
            retry_after_s=1,
            poison="POISON-MARK",
        )
        events = purchases(200, "secret")
        events[5]["properties"] = {"note": "POISON-MARK"}
        enqueue_many(relay.redis, events, prefix=relay.prefix)
        relay.redis.xadd(keys.inbox, {b"event": b"{not json"})
        relay.redis.xadd(keys.inbox, {b"other": b"no event field"})
        wait_until(lambda: emulator_client.counters()["events_accepted"] >= 199, 90, "deliveries")
        wait_until(lambda: relay.redis.xlen(keys.dlq) >= 3, 30, "the dead letters")
        assert emulator_client.counters()["status"].get("503", 0) > 0

        # A 401 pauses; the operator resumes once the key is fixed.
        emulator_client.set_faults(unauthorized=True, error_rates={}, rate_limit_rps=None)
        enqueue_many(relay.redis, purchases(10, "secret-pause"), prefix=relay.prefix)
        wait_until(lambda: relay.redis.get(keys.paused) is not None, 60, "the pause")
        for args in (("stats", "--json"), ("stats",), ("check",)):
            out = relay.cli(*args)
            seen += [out.stdout, out.stderr]
        emulator_client.set_faults(unauthorized=False)
        out = relay.cli("resume")
        seen += [out.stdout, out.stderr]
        wait_until(
            lambda: emulator_client.counters()["events_accepted"] >= 209, 60, "after resuming"
        )

        for args in (
            ("check",),
            ("stats", "--json"),
            ("dlq", "list", "--json"),
            ("activity", "--json"),
            ("activity",),
            ("workflow", "show"),
        ):
            out = relay.cli(*args)
            seen += [out.stdout, out.stderr]
        # A bad setting is reported without echoing any value.
        bad = subprocess.run(
            [sys.executable, "-m", "worker.cli.main", "check"],
            env={**env, "CIO_TRACK_URL": f"ftp://{API_KEY}", "CIO_MAX_RPS": PASSWORD},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert bad.returncode != 0
        seen += [bad.stdout, bad.stderr]

        base = f"http://127.0.0.1:{port}"

        def flower_up() -> bool:
            try:
                return requests.get(base, timeout=2).status_code == 401
            except requests.ConnectionError:
                return False

        wait_until(flower_up, 30, "Flower")
        for path in ("/api/workers?refresh=1", "/api/tasks", "/", "/tasks", "/broker"):
            r = requests.get(base + path, auth=("ops", PASSWORD), timeout=30)
            assert r.status_code == 200, path
            seen.append(r.text)
        wrong = requests.get(base + "/api/workers", auth=("ops", "wrong"), timeout=10)
        assert wrong.status_code == 401
        seen.append(wrong.text + json.dumps(dict(wrong.headers)))
        seen.append(emulator_client.requests_jsonl())
        seen.append(json.dumps(emulator_client.requests()))
    finally:
        relay.stop()
        flower_log.close()
    assert relay.redis.xlen(keys.dlq) == 3
    assert relay.redis.xlen(keys.activity) > 0
    assert "delivery_paused" in relay.logs()
    assert leaks(relay.logs()) == [], "a secret is in a log"
    assert leaks(redis_dump(relay.redis, relay.prefix)) == [], "a secret is in Redis"
    assert leaks("\n".join(seen)) == [], "a secret is in CLI output, Flower or a request"
