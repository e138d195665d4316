"""The Test event page: a dry run shows what the relay does — checked against a running
relay, whose request to Customer.io (the emulator) must carry the very operation the dry
run showed — and the skip or dead-letter reason otherwise; Send is for editors."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import requests

from tests.console.conftest import USERS
from tests.console.helpers import Console
from tests.console.relay_console import RelayConsole, relay_console
from tests.integration.conftest import ROOT, emulator, wait_until
from worker.producer import enqueue
from worker.workflow.loader import load_workflow_file
from worker.workflow.store import WorkflowStore

__all__ = ["emulator", "relay_console"]

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BODY = re.compile(r"<h3>Request body</h3><pre>(.*?)</pre>", re.S)


def signed_in(url: str, name: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    token = CSRF.search(session.get(url + "/login", timeout=10).text)
    assert token
    reply = session.post(
        url + "/login",
        data={
            "username": name,
            "password": USERS[name][1],
            "csrf_token": token.group(1),
            "next": "/test-event",
        },
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    page = CSRF.search(session.get(url + "/test-event", timeout=10).text)
    assert page
    return session, page.group(1)


def test_dry_run_shows_the_operation_the_relay_then_sends(relay_console: RelayConsole) -> None:
    rc = relay_console
    event = {
        "type": "track",
        "event": "Purchased",
        "messageId": "dry-run-agreement-1",
        "timestamp": "2026-01-02T03:04:05Z",
        "context": {"traits": {"email": "dry@example.com"}},
        "properties": {"total": 12.5, "items": ["a", "b"]},
    }
    session, token = signed_in(rc.console.url, "viewer")
    reply = session.post(
        rc.console.url + "/test-event",
        data={
            "event": json.dumps(event),
            "source_kind": "server",
            "action": "dry_run",
            "csrf_token": token,
        },
        timeout=10,
    )
    assert reply.status_code == 200
    assert "Send to Customer.io: POST /api/v2/batch" in reply.text
    match = BODY.search(reply.text)
    assert match, reply.text
    shown = json.loads(unescape(match.group(1)))["batch"]
    assert len(shown) == 1
    assert rc.console.redis.xlen(rc.console.keys.inbox) == 0  # a dry run sends nothing

    enqueue(rc.console.redis, event, prefix=rc.console.keys.prefix)

    def sent() -> list[dict[str, object]]:
        return [
            op
            for r in rc.emulator.requests()
            if isinstance(r.get("body"), dict)
            for op in r["body"].get("batch", [])
            if op.get("id") == shown[0]["id"]
        ]

    wait_until(lambda: len(sent()) == 1, 30, "the purchase delivered")
    assert sent()[0] == shown[0]


def test_dry_run_names_the_skip_and_dead_letter_reasons(tmp_path: Path) -> None:
    console = Console(tmp_path, unidentified="dead_letter")
    WorkflowStore(console.redis, console.keys).replace(
        load_workflow_file(ROOT / "tests" / "integration" / "workflow.toml")
    )
    client, token = console.signed_in("vi")

    def run(event: object, kind: str = "server") -> str:
        reply = client.post(
            "/test-event",
            data={
                "event": event if isinstance(event, str) else json.dumps(event),
                "source_kind": kind,
                "action": "dry_run",
                "csrf_token": token,
            },
        )
        assert reply.status_code == 200
        return reply.text

    off = run({"type": "track", "event": "Disabled event", "userId": "x@example.com"})
    assert "Skip: toggle_off" in off
    dead = run({"type": "track", "event": "Purchased", "anonymousId": "nobody"})
    assert "Dead letter: missing_identifier" in dead
    bad = run("not json {")
    assert "Dead letter: invalid_json" in bad
    assert console.redis.xlen(console.keys.inbox) == 0


def test_send_is_for_editors_and_adds_the_event_to_the_inbox(tmp_path: Path) -> None:
    console = Console(tmp_path)
    event = json.dumps({"type": "track", "event": "Purchased", "userId": "s@example.com"})
    viewer, vtoken = console.signed_in("vi")
    refused = viewer.post(
        "/test-event", data={"event": event, "action": "send", "csrf_token": vtoken}
    )
    assert refused.status_code == 403
    assert console.redis.xlen(console.keys.inbox) == 0
    assert "Send</button>" not in viewer.get("/test-event").text
    editor, etoken = console.signed_in("ed")
    no_token = editor.post("/test-event", data={"event": event, "action": "send"})
    assert no_token.status_code == 403
    sent = editor.post("/test-event", data={"event": event, "action": "send", "csrf_token": etoken})
    assert sent.status_code == 200 and "Sent: inbox entry" in sent.text
    rows = console.redis.xrange(console.keys.inbox)
    assert len(rows) == 1 and json.loads(rows[0][1][b"event"])["userId"] == "s@example.com"
