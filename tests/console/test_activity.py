"""Activity in-process (fakeredis): filters by outcome, reason, name and identifier, pages
newest first, live rows after a cursor, a dead entry opens its dead letter, names escaped."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.console.helpers import Console
from worker.activity import activity_fields
from worker.console.pages.activity import ActivityFilter, newer, page
from worker.outcomes import Outcome


def add(console: Console, status: str, name: str, reason: str | None = None, who: str = "") -> str:
    outcome = Outcome(f"9-{time.monotonic_ns()}", status, reason, name=name, identifier=who or None)  # type: ignore[arg-type]
    return console.redis.xadd(console.keys.activity, activity_fields(outcome, time.time())).decode()


def test_filters_and_pages(tmp_path: Path) -> None:
    console = Console(tmp_path)
    delivered = [add(console, "delivered", "Purchased", who=f"p{i}@example.com") for i in range(70)]
    skipped = add(console, "skipped", "Page viewed", "path_blocked", "a@example.com")
    r, k = console.redis, console.keys
    first = page(r, k, ActivityFilter(), limit=50)
    assert [x["id"] for x in first.rows] == [skipped, *delivered[::-1]][:50]
    rest = page(r, k, ActivityFilter(), before=first.older, limit=50)
    assert [x["id"] for x in rest.rows] == delivered[::-1][49:]
    assert [x["id"] for x in page(r, k, ActivityFilter(outcome="skipped")).rows] == [skipped]
    assert [x["id"] for x in page(r, k, ActivityFilter(reason="path_blocked")).rows] == [skipped]
    assert [x["id"] for x in page(r, k, ActivityFilter(name="page view")).rows] == [skipped]
    by_who = page(r, k, ActivityFilter(identifier="P7@")).rows
    assert [x["id"] for x in by_who] == [delivered[7]]
    client, _ = console.signed_in("vi")
    html = client.get("/activity", params={"outcome": "skipped"}).text
    assert "path_blocked" in html and "Purchased" not in html


def test_live_rows_come_after_the_cursor(tmp_path: Path) -> None:
    console = Console(tmp_path)
    before = add(console, "delivered", "Purchased")
    later = add(console, "skipped", "Disabled event", "toggle_off")
    rows, cursor = newer(console.redis, console.keys, ActivityFilter(outcome="skipped"), before)
    assert [x["id"] for x in rows] == [later] and cursor == later
    client, _ = console.signed_in("vi")
    reply = client.get("/activity/rows", params={"after": before})
    assert "toggle_off" in reply.text and "Purchased" not in reply.text
    assert reply.headers["x-activity-cursor"] == later
    assert client.get("/activity/rows", params={"after": later}).text.strip() == ""


def test_dead_entry_opens_its_dead_letter_and_markup_is_text(tmp_path: Path) -> None:
    console = Console(tmp_path)
    name = "<script>alert(1)</script>"
    outcome = Outcome("5-1", "dead", "missing_identifier", "no email", name=name)
    entry = console.redis.xadd(console.keys.activity, activity_fields(outcome, time.time()))
    raw = json.dumps({"type": "track", "event": name, "anonymousId": "x"})
    console.redis.xadd(
        console.keys.dlq,
        {
            "reason": "missing_identifier",
            "detail": "no email",
            "inbox_id": "5-1",
            "raw": raw,
            "name": name,
            "dead_at": str(time.time()),
            "response": "<b>bad</b>",
        },
    )
    client, _ = console.signed_in("vi")
    html = client.get(f"/activity/entry/{entry.decode()}").text
    assert "Dead letter" in html and "&lt;b&gt;bad&lt;/b&gt;" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    listing = client.get("/activity").text
    assert "<script>alert" not in listing and "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
