"""Screenshots of the console's main pages with realistic data: docs/console-*.png
(``python -m bench.console_screens``; needs redis-server and /usr/bin/chromium)."""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests
from playwright.sync_api import sync_playwright

from bench.procs import free_port, wait_for
from worker import audit, catalogue
from worker.activity import activity_fields
from worker.console import auth
from worker.ids import event_ulid
from worker.keys import Keys
from worker.outcomes import Outcome
from worker.redisconn import local_server_argv
from worker.workflow.loader import load_workflow_file
from worker.workflow.store import WorkflowStore

ROOT = Path("/work/main")
home = Path(tempfile.mkdtemp())
rport, cport = free_port(), free_port()
rp = subprocess.Popen(
    local_server_argv(shutil.which("redis-server"), rport, home), stdout=subprocess.DEVNULL
)
time.sleep(0.5)
c = redis.Redis(port=rport)
k = Keys("shots")
rng = random.Random(3)
WorkflowStore(c, k).replace(load_workflow_file(ROOT / "config" / "workflow.toml"))
now = time.time()
names = [
    "Page viewed",
    "Added to cart",
    "Purchased",
    "Signed up",
    "Checkout started",
    "Product viewed",
    "Newsletter subscribed",
    "Coupon applied",
    "Search performed",
    "Wishlist added",
]
pipe = c.pipeline()
for n in names:
    catalogue.note(
        pipe,
        k,
        [(n, rng.choice(["server", "client"]))] * rng.randint(20, 4000),
        now - rng.randint(0, 3000),
    )
pipe.execute()
people = [
    f"{p}@example.com" for p in ["ana", "ben", "chloe", "dev", "emma", "farid", "grace", "hugo"]
]
rows = []
for i in range(400):
    at = now - (400 - i) * 2.2
    n = rng.choice(names)
    r = rng.random()
    if r < 0.7:
        o = Outcome(
            f"1-{i}", "delivered", None, name=n, identifier=rng.choice(people), http_status=200
        )
    elif r < 0.85:
        o = Outcome(
            f"1-{i}",
            "skipped",
            rng.choice(["toggle_off", "path_blocked", "consent_denied"]),
            name=n,
        )
    elif r < 0.93:
        o = Outcome(
            f"1-{i}", "retry", "http_429", name=n, identifier=rng.choice(people), http_status=429
        )
    else:
        o = Outcome(
            f"1-{i}",
            "dead",
            rng.choice(["missing_identifier", "rejected"]),
            name=n,
            identifier=None if rng.random() < 0.5 else rng.choice(people),
            http_status=None,
        )
    o.event_id = event_ulid(f"evt-{i}")
    c.xadd(k.activity, activity_fields(o, at), id=f"{int(at * 1000)}-*")
for i in range(37):
    n = rng.choice(names)
    reason = rng.choice(["missing_identifier", "missing_identifier", "rejected", "callback_error"])
    raw = json.dumps(
        {
            "type": "track",
            "event": n,
            "anonymousId": f"a-{1000 + i}",
            "messageId": f"msg-{i}",
            "properties": {"sku": f"SKU-{i}", "price": 19.9},
            "context": {"page": {"url": "https://shop.example.com/cart"}},
        }
    )
    resp = (
        '{"errors":[{"reason":"invalid","field":"identifiers.email","message":"must be an email"}]}'
        if reason == "rejected"
        else ""
    )
    detail = {
        "missing_identifier": "no identify_by_email on the event or remembered for its ids",
        "rejected": "400 from /api/v2/batch: identifiers.email must be an email",
        "callback_error": "KeyError: 'price_cents'",
    }[reason]
    f = {
        "reason": reason,
        "detail": detail,
        "inbox_id": f"2-{i}",
        "received_at": f"{now - 900 + i * 20:.0f}",
        "attempts": "1" if reason == "rejected" else "0",
        "first_attempt_at": f"{now - 900 + i * 20:.3f}",
        "last_attempt_at": f"{now - 900 + i * 20:.3f}",
        "dead_at": f"{now - 900 + i * 20:.3f}",
        "raw": raw,
        "name": n,
        "event_id": event_ulid(f"dead-{i}"),
    }
    if resp:
        f["response"] = resp
        f["http_status"] = "400"
    c.xadd(k.dlq, f)
c.hset(
    k.counters,
    mapping={
        "delivered": 182_344,
        "skipped": 20_112,
        "skipped:toggle_off": 15_001,
        "skipped:path_blocked": 4_870,
        "skipped:consent_denied": 241,
        "dead": 37,
        "dead:missing_identifier": 24,
        "dead:rejected": 9,
        "dead:callback_error": 4,
        "requests": 3_121,
        "http:200": 3_060,
        "http:429": 61,
    },
)
audit.record(c, k, "maria", "login", {})
users = home / "users.toml"
auth.add_user(users, "maria", "editor", "screens-pass-1")
env = {kk: v for kk, v in os.environ.items() if not kk.startswith("CIO_")}
env.update(
    CIO_REDIS_URL=f"redis://127.0.0.1:{rport}/0",
    CIO_REDIS_PREFIX="shots",
    CIO_CONSOLE_USERS_FILE=str(users),
    PYTHONPATH=str(ROOT),
)
cp = subprocess.Popen(
    [sys.executable, "-m", "worker.cli.main", "console", "--port", str(cport)],
    env=env,
    cwd=ROOT,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
base = f"http://127.0.0.1:{cport}"
wait_for(lambda: requests.get(base + "/login", timeout=1).status_code == 200, 30, "console")


def rates():
    t = int(time.time())
    p = c.pipeline()
    for s in range(t - 32, t + 40):
        ev = 40 + int(25 * abs(((s % 20) - 10) / 10)) + rng.randint(0, 10)
        p.hset(k.rate(s), mapping={"requests": max(1, ev // 40) + rng.randint(0, 1), "events": ev})
        p.expire(k.rate(s), 120)
    p.execute()


try:
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/login?next=/workflow")
        page.get_by_label("Username").fill("maria")
        page.get_by_label("Password").fill("screens-pass-1")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(base + "/workflow")
        for path, out in [
            ("/workflow", "workflow"),
            ("/activity", "activity"),
            ("/dlq", "dlq"),
            ("/overview", "overview"),
        ]:
            rates()
            page.goto(base + path)
            page.wait_for_timeout(2500)
            page.screenshot(
                path=str(ROOT / "docs" / f"console-{out}.png"), full_page=(out == "overview")
            )
            print("shot", out)
        b.close()
finally:
    cp.terminate()
    rp.terminate()
