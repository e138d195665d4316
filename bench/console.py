"""Console page speed: fill a Redis of our own with 10,000 catalogue names, 100,000 dead
letters and a full activity stream, start ``cio-relay console``, sign in, and time each
page (p50/p95 over 20 requests after 2 warm-ups). Run: ``python -m bench.console``."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

from bench.procs import free_port, wait_for
from worker import catalogue
from worker.activity import activity_fields
from worker.console import auth
from worker.keys import Keys
from worker.outcomes import Outcome
from worker.redisconn import local_server_argv
from worker.workflow.loader import load_workflow_file
from worker.workflow.store import WorkflowStore

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "bench"
PASSWORD = "bench-password-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
DEAD_REASONS = ("missing_identifier", "rejected", "callback_error", "retries_exhausted")
SKIP_REASONS = ("toggle_off", "path_blocked", "source_filtered", "consent_denied")


def fill(client: redis.Redis, keys: Keys, names: int, dead: int, activity: int) -> str:
    """Write the data set; returns one dead letter's id (for the detail page)."""
    now = time.time()
    rng = random.Random(7)
    WorkflowStore(client, keys).replace(
        load_workflow_file(ROOT / "tests" / "integration" / "workflow.toml")
    )
    pipe = client.pipeline(transaction=False)
    for start in range(0, names, 500):
        seen = [
            (f"Event {i:05d}", rng.choice(("server", "client"))) for i in range(start, start + 500)
        ]
        catalogue.note(pipe, keys, seen, now, cap=names + 10)
    pipe.execute()
    some_id = ""
    for start in range(0, dead, 2_000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(dead, start + 2_000)):
            name = f"Event {rng.randrange(names):05d}"
            raw = json.dumps(
                {
                    "type": "track",
                    "event": name,
                    "anonymousId": f"anon-{i}",
                    "messageId": f"m-{i}",
                    "properties": {"sku": f"SKU-{i}", "price": i % 100},
                    "context": {"page": {"url": f"https://shop.example.com/p/{i}"}},
                }
            )
            pipe.xadd(
                keys.dlq,
                {
                    "reason": DEAD_REASONS[i % 4],
                    "detail": "no identify_by_email on the event",
                    "inbox_id": f"{int(now * 1000)}-{i}",
                    "received_at": f"{now:.0f}",
                    "attempts": "1",
                    "first_attempt_at": f"{now:.3f}",
                    "last_attempt_at": f"{now:.3f}",
                    "dead_at": f"{now:.3f}",
                    "raw": raw,
                    "name": name,
                    "event_id": f"06B{i:023d}",
                },
            )
        ids = pipe.execute()
        some_id = ids[-1].decode()
    pipe = client.pipeline(transaction=False)
    for i in range(activity):
        status = ("delivered", "delivered", "skipped", "dead")[i % 4]
        reason = (
            None
            if status == "delivered"
            else (SKIP_REASONS if status == "skipped" else DEAD_REASONS)[i % 4]
        )
        o = Outcome(
            f"1-{i}",
            status,
            reason,
            event_id=f"06C{i:023d}",  # type: ignore[arg-type]
            name=f"Event {i % names:05d}",
            identifier=f"user{i}@example.com",
        )
        pipe.xadd(keys.activity, activity_fields(o, now - (activity - i) * 0.05))
    pipe.execute()
    return some_id


def timed(session: requests.Session, url: str, n: int) -> list[float]:
    """Milliseconds of ``n`` GETs of ``url`` after 2 warm-ups (HTTPError when it fails)."""
    for _ in range(2):
        session.get(url, timeout=60).raise_for_status()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        reply = session.get(url, timeout=60)
        reply.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--names", type=int, default=10_000)
    p.add_argument("--dead", type=int, default=100_000)
    p.add_argument("--activity", type=int, default=10_000, help="CIO_ACTIVITY_MAX (full stream)")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "console.json"))
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-console-"))
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed"
    rport, cport = free_port(), free_port()
    redis_proc = subprocess.Popen(local_server_argv(binary, rport, home), stdout=subprocess.DEVNULL)
    console_proc = None
    try:
        url = f"redis://127.0.0.1:{rport}/0"
        client = redis.Redis.from_url(url)
        wait_for(lambda: _pings(client), 10, "redis-server")
        keys = Keys(PREFIX)
        started = time.perf_counter()
        dead_id = fill(client, keys, args.names, args.dead, args.activity)
        print(
            f"filled in {time.perf_counter() - started:.1f} s: {args.names} names, "
            f"{client.xlen(keys.dlq)} dead letters, {client.xlen(keys.activity)} activity entries"
        )
        users = home / "users.toml"
        auth.add_user(users, "bench", "editor", PASSWORD)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
        env.update(
            CIO_REDIS_URL=url,
            CIO_REDIS_PREFIX=PREFIX,
            CIO_CONSOLE_USERS_FILE=str(users),
            PYTHONPATH=str(ROOT),
            CIO_LOG_FORMAT="json",
        )
        console_proc = subprocess.Popen(
            [sys.executable, "-m", "worker.cli.main", "console", "--port", str(cport)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{cport}"
        wait_for(lambda: _answers(base), 30, "the console")
        session = requests.Session()
        token = CSRF.search(session.get(base + "/login").text)
        assert token
        session.post(
            base + "/login",
            data={
                "username": "bench",
                "password": PASSWORD,
                "csrf_token": token.group(1),
                "next": "/activity",
            },
        )
        pages = [
            "/workflow",
            "/activity",
            "/activity?outcome=dead&reason=rejected&name=Event+00042",
            "/activity/rows?after=0-0",
            "/dlq",
            "/dlq?reason=callback_error",
            "/dlq?name=Event+00042",
            f"/dlq/entry/{dead_id}",
            "/overview?window=24h",
            "/overview/data?window=24h",
            "/test-event",
            "/history",
            "/audit",
        ]
        results = []
        for path in pages:
            try:
                times = sorted(timed(session, base + path, args.requests))
            except requests.HTTPError as exc:
                results.append({"page": path, "error": str(exc)})
                print(f"{path:<55} failed: {exc}")
                continue
            p50 = statistics.median(times)
            p95 = times[max(0, round(0.95 * len(times)) - 1)]
            results.append({"page": path, "p50_ms": round(p50, 1), "p95_ms": round(p95, 1)})
            print(f"{path:<55} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
        Path(args.out).write_text(
            json.dumps(
                {
                    "names": args.names,
                    "dead_letters": args.dead,
                    "activity": args.activity,
                    "requests": args.requests,
                    "pages": results,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"wrote {args.out}")
        return 0
    finally:
        if console_proc is not None:
            console_proc.terminate()
            console_proc.wait(15)
        redis_proc.terminate()
        redis_proc.wait(15)
        shutil.rmtree(home, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _answers(base: str) -> bool:
    try:
        return requests.get(base + "/login", timeout=1).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    sys.exit(main())
