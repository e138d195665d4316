"""Dead letters in-process (fakeredis): newest-first pages, filters by reason and name,
replay and purge by reason only after a dry-run count, every change audited, export as
JSON lines, editors only, CSRF on every POST."""

from __future__ import annotations

import json
from pathlib import Path

from tests.console.helpers import Console
from worker import audit
from worker.console.pages.dlq import list_page
from worker.dlq import Filter


def add_letters(console: Console, n: int, reason: str, name: str) -> list[str]:
    ids = []
    for i in range(n):
        raw = json.dumps({"type": "track", "event": name, "messageId": f"{reason}-{i}"})
        fields = {
            "reason": reason,
            "detail": f"because {i}",
            "inbox_id": f"1-{i}",
            "received_at": "1",
            "attempts": "1",
            "first_attempt_at": "1",
            "last_attempt_at": "2",
            "dead_at": "3",
            "raw": raw,
            "name": name,
        }
        ids.append(console.redis.xadd(console.keys.dlq, fields).decode())
    return ids


def test_list_pages_newest_first_and_filters(tmp_path: Path) -> None:
    console = Console(tmp_path)
    old = add_letters(console, 60, "rejected", "Purchased")
    new = add_letters(console, 3, "missing_identifier", "Signed up")
    first = list_page(console.redis, console.keys, Filter(), limit=50)
    assert [x.id for x in first.letters] == (old + new)[::-1][:50]
    second = list_page(console.redis, console.keys, Filter(), before=first.older, limit=50)
    assert [x.id for x in second.letters] == (old + new)[::-1][50:] and second.older is None
    by_reason = list_page(console.redis, console.keys, Filter(reason="missing_identifier"))
    assert [x.id for x in by_reason.letters] == new[::-1]
    client, _ = console.signed_in("vi")
    page = client.get("/dlq", params={"name": "Signed up"}).text
    assert page.count("missing_identifier</td>") == 3 and "Purchased" not in page


def test_replay_by_reason_shows_the_count_first_then_moves_and_audits(tmp_path: Path) -> None:
    console = Console(tmp_path)
    add_letters(console, 4, "rejected", "Purchased")
    add_letters(console, 2, "missing_identifier", "Purchased")
    client, token = console.signed_in("ed")
    dry = client.post("/dlq/replay", data={"reason": "missing_identifier", "csrf_token": token})
    assert dry.status_code == 200
    assert "would replay <strong>2</strong>" in dry.text
    assert console.redis.xlen(console.keys.dlq) == 6 and console.redis.xlen(console.keys.inbox) == 0
    done = client.post(
        "/dlq/replay",
        data={"reason": "missing_identifier", "confirm": "yes", "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "replayed+2" in done.headers["location"]
    assert console.redis.xlen(console.keys.dlq) == 4 and console.redis.xlen(console.keys.inbox) == 2
    inbox = [json.loads(f[b"event"]) for _, f in console.redis.xrange(console.keys.inbox)]
    assert {e["messageId"] for e in inbox} == {"missing_identifier-0", "missing_identifier-1"}
    [entry] = [e for e in audit.read(console.redis, console.keys) if e.action.startswith("dlq")]
    assert (entry.user, entry.action, entry.detail["count"]) == ("ed", "dlq.replay", 2)
    assert entry.detail["reason"] == "missing_identifier"


def test_purge_selected_after_confirmation(tmp_path: Path) -> None:
    console = Console(tmp_path)
    ids = add_letters(console, 3, "rejected", "Purchased")
    client, token = console.signed_in("ed")
    dry = client.post("/dlq/purge", data={"id": ids[:2], "csrf_token": token})
    assert (
        "would purge <strong>2</strong>" in dry.text and console.redis.xlen(console.keys.dlq) == 3
    )
    client.post("/dlq/purge", data={"id": ids[:2], "confirm": "yes", "csrf_token": token})
    assert [i.decode() for i, _ in console.redis.xrange(console.keys.dlq)] == ids[2:]
    assert audit.read(console.redis, console.keys, 1)[0].action == "dlq.purge"


def test_viewers_and_missing_csrf_change_nothing(tmp_path: Path) -> None:
    console = Console(tmp_path)
    ids = add_letters(console, 2, "rejected", "Purchased")
    viewer, vtoken = console.signed_in("vi")
    assert ">Replay</button>" not in viewer.get("/dlq").text
    for action in ("replay", "purge"):
        reply = viewer.post(
            f"/dlq/{action}", data={"id": ids, "confirm": "yes", "csrf_token": vtoken}
        )
        assert reply.status_code == 403
    editor, _ = console.signed_in("ed")
    assert ">Replay</button>" in editor.get("/dlq").text
    for data in ({"id": ids, "confirm": "yes"}, {"id": ids, "confirm": "yes", "csrf_token": "x"}):
        assert editor.post("/dlq/purge", data=data).status_code == 403
    anonymous = console.client()
    assert anonymous.post("/dlq/replay", data={"id": ids, "confirm": "yes"}).status_code in (
        401,
        403,
    )
    assert console.redis.xlen(console.keys.dlq) == 2 and console.redis.xlen(console.keys.inbox) == 0
    assert all(e.action.startswith("log") for e in audit.read(console.redis, console.keys))


def test_export_writes_every_match_as_json_lines(tmp_path: Path) -> None:
    console = Console(tmp_path)
    add_letters(console, 3, "rejected", "Purchased")
    add_letters(console, 1, "too_large", "Big")
    client, _ = console.signed_in("vi")
    reply = client.get("/dlq/export", params={"reason": "rejected"})
    assert reply.status_code == 200
    assert "attachment" in reply.headers["content-disposition"]
    lines = [json.loads(line) for line in reply.text.splitlines()]
    assert [x["reason"] for x in lines] == ["rejected"] * 3
    assert json.loads(lines[0]["raw"])["messageId"] == "rejected-0"


def test_event_data_is_escaped(tmp_path: Path) -> None:
    console = Console(tmp_path)
    [entry_id] = add_letters(console, 1, "rejected", "<img src=x onerror=alert(1)>")
    client, _ = console.signed_in("ed")
    for path in ("/dlq", f"/dlq/entry/{entry_id}"):
        page = client.get(path).text
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
