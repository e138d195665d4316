"""Overview in-process (fakeredis): the window's funnel counted from the activity stream,
the rate series, Pause and Resume (editors, CSRF, audited) and the pause state shown."""

from __future__ import annotations

import time
from pathlib import Path

from tests.console.helpers import Console
from worker import audit
from worker.activity import activity_fields
from worker.console.pages.overview import funnel
from worker.outcomes import Outcome


def add_at(
    console: Console, at: float, status: str, reason: str | None = None, **kw: object
) -> None:
    fields = activity_fields(Outcome("1-1", status, reason, **kw), at)  # type: ignore[arg-type]
    console.redis.xadd(console.keys.activity, fields, id=f"{int(at * 1000)}-*")


def test_funnel_counts_only_the_window(tmp_path: Path) -> None:
    console = Console(tmp_path)
    now = time.time()
    add_at(console, now - 3000, "delivered")  # outside a 15 min window
    add_at(console, now - 600, "delivered")
    add_at(console, now - 500, "skipped", "toggle_off")
    add_at(console, now - 400, "skipped", "toggle_off")
    add_at(console, now - 300, "skipped", "path_blocked")
    add_at(console, now - 200, "dead", "missing_identifier")
    add_at(console, now - 100, "retry", "http_429", http_status=429)
    counts = funnel(console.redis, console.keys, now, 900)
    assert counts.delivered == 1 and counts.received == 5
    assert dict(counts.skipped) == {"toggle_off": 2, "path_blocked": 1}
    assert dict(counts.dead) == {"missing_identifier": 1} and counts.retries_429 == 1
    assert sum(counts.series["delivered"]) == 1 and sum(counts.series["429"]) == 1
    assert counts.covers_window
    hour = funnel(console.redis, console.keys, now, 3600)
    assert hour.delivered == 2
    client, _ = console.signed_in("vi")
    html = client.get("/overview", params={"window": "15m"}).text
    assert "toggle_off" in html and "path_blocked" in html and "missing_identifier" in html


def test_rates_come_from_the_per_second_hashes(tmp_path: Path) -> None:
    console = Console(tmp_path)
    second = int(time.time()) - 2
    console.redis.hset(console.keys.rate(second), mapping={"requests": 3, "events": 240})
    client, _ = console.signed_in("vi")
    data = client.get("/overview/data").json()
    at = data["rates"]["t"].index(float(second))
    assert data["rates"]["events"][at] == 240 and data["rates"]["requests"][at] == 3


def test_pause_and_resume_are_for_editors_and_audited(tmp_path: Path) -> None:
    console = Console(tmp_path)
    viewer, vtoken = console.signed_in("vi")
    assert ">Pause</button>" not in viewer.get("/overview").text
    assert viewer.post("/overview/pause", data={"csrf_token": vtoken}).status_code == 403
    editor, token = console.signed_in("ed")
    assert editor.post("/overview/pause", data={}).status_code == 403
    assert console.redis.get(console.keys.paused) is None
    page = editor.post("/overview/pause", data={"csrf_token": token})
    assert console.redis.get(console.keys.paused) == b"paused by hand: console:ed"
    assert "Paused: paused by hand: console:ed" in page.text and ">Resume</button>" in page.text
    assert viewer.post("/overview/resume", data={"csrf_token": vtoken}).status_code == 403
    assert console.redis.get(console.keys.paused) is not None
    page = editor.post("/overview/resume", data={"csrf_token": token})
    assert console.redis.get(console.keys.paused) is None and ">Pause</button>" in page.text
    actions = [e.action for e in audit.read(console.redis, console.keys) if e.user == "ed"]
    assert actions[:2] == ["resume", "pause"]
