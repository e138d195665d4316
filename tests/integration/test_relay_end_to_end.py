"""The whole relay over real processes: redis-server, Celery worker and beat, emulator HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import API_KEY, ROOT, Relay, wait_until
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import enqueue

pytestmark = pytest.mark.integration

ADA = "ada@example.com"


def cl(method: str, name: str | None, msg: str, **custom: object) -> dict[str, object]:
    event: dict[str, object] = {
        "method": method,
        "message_id": msg,
        "timestamp": "2026-03-02T10:15:00Z",
        "customerlabs_user_id": "cl_visitor_1",
        "properties": {"customProperties": custom},
    }
    if name:
        event["event_name"] = name
    return event


def settled(relay: Relay, n: int) -> bool:
    counts = relay.redis.hgetall(Keys(relay.prefix).counters)
    done = sum(int(counts.get(k.encode(), 0)) for k in ("delivered", "skipped", "dead"))
    return done >= n


def test_enabled_events_arrive_and_others_are_skipped(
    relay: Relay, emulator_client: EmulatorClient
) -> None:
    """Identify, attributed anonymous page view, callback change, toggle-off, path block, drop."""
    identify = cl(
        "identify",
        None,
        "m-identify",
        user_traits={
            "t": "Object",
            "v": {"first_name": {"t": "string", "v": "Ada"}, "email": {"t": "string", "v": ADA}},
        },
        identify_by_email={"t": "string", "v": ADA, "ib": True},
    )
    page = cl(
        "pageview",
        "Page viewed",
        "m-page",
        page_url={"t": "string", "v": "https://shop.example.com/shoes"},
    )
    cart = cl("trackClick", "Added to cart", "m-cart", value={"t": "number", "v": "19.5"})
    cart["properties"]["productProperties"] = [  # type: ignore[index]
        {"product_id": {"t": "string", "v": "sku-1"}, "product_price": {"t": "number", "v": 19.5}}
    ]
    admin = cl(
        "pageview",
        "Page viewed",
        "m-admin",
        page_url={"t": "string", "v": "https://shop.example.com/admin/x"},
    )
    off = cl("trackClick", "Disabled event", "m-off")
    unlisted = cl("trackClick", "Not in workflow", "m-unlisted")
    dropped = cl("trackClick", "Dropped", "m-drop")
    for event in (identify, page, cart, admin, off, unlisted, dropped):
        enqueue(relay.redis, event, prefix=relay.prefix)

    wait_until(lambda: settled(relay, 7), 60, "all seven events to settle")
    events = {e["name"]: e for e in emulator_client.events()}
    assert set(events) == {"https://shop.example.com/shoes", "Added to cart"}
    page_seen = events["https://shop.example.com/shoes"]
    assert page_seen["type"] == "page"
    assert page_seen["email"] == ADA
    assert page_seen["id"] == event_ulid("msg:m-page")
    assert page_seen["timestamp"] == 1772446500
    cart_seen = events["Added to cart"]
    assert cart_seen["data"]["margin"] == 42
    assert cart_seen["data"]["value"] == 19.5
    assert cart_seen["data"]["products"] == [{"product_id": "sku-1", "product_price": 19.5}]
    people = emulator_client.people()
    assert [p["email"] for p in people] == [ADA]
    assert people[0]["attributes"]["first_name"] == "Ada"

    counts = json.loads(relay.cli("stats", "--json").stdout)["counts"]
    assert counts["delivered"] == 3
    assert counts["skipped:toggle_off"] == 2
    assert counts["skipped:path_blocked"] == 1
    assert counts["skipped:callback_dropped"] == 1


def test_bad_input_lands_in_dlq_and_replay_delivers_once(
    relay: Relay, emulator_client: EmulatorClient
) -> None:
    """Invalid event, missing identifier and a 400 are dead-lettered; replay sends the same ULID."""
    keys = Keys(relay.prefix)
    relay.redis.xadd(keys.inbox, {"event": b"{not json"})
    nobody = {
        "type": "track",
        "event": "Purchased",
        "messageId": "m-nobody",
        "properties": {"total": 5},
    }
    enqueue(relay.redis, nobody, prefix=relay.prefix)
    emulator_client.set_faults(poison="POISON-MARK")
    poisoned = {
        "type": "track",
        "event": "Purchased",
        "userId": "u1",
        "messageId": "m-poison",
        "context": {"traits": {"email": ADA}},
        "properties": {"note": "POISON-MARK"},
    }
    enqueue(relay.redis, poisoned, prefix=relay.prefix)

    wait_until(lambda: relay.redis.xlen(keys.dlq) >= 3, 60, "three dead letters")
    listed = [json.loads(line) for line in relay.cli("dlq", "list", "--json").stdout.splitlines()]
    by_reason = {row["reason"]: row for row in listed}
    assert set(by_reason) == {"invalid_json", "missing_identifier", "rejected"}
    assert by_reason["invalid_json"]["raw"] == "{not json"
    assert json.loads(by_reason["missing_identifier"]["raw"]) == nobody
    assert by_reason["rejected"]["http_status"] == "400"
    assert emulator_client.events() == []

    emulator_client.set_faults(poison=None)
    out = relay.cli("dlq", "replay", "--reason", "rejected")
    assert out.returncode == 0, out.stderr
    wait_until(lambda: len(emulator_client.events()) == 1, 60, "the replayed event")
    (seen,) = emulator_client.events()
    assert seen["id"] == event_ulid("msg:m-poison")
    assert seen["email"] == ADA
    assert relay.redis.xlen(keys.dlq) == 2


def test_requests_conform_to_customerio_spec_and_hide_the_key(
    relay: Relay, emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    """Every recorded request passes cio-contract-check; the API key is in no log or record."""
    for sample in ("customerlabs.jsonl", "segment.jsonl"):
        out = relay.cli("enqueue", "--no-progress", str(ROOT / "config" / "samples" / sample))
        assert out.returncode == 0, out.stderr
    wait_until(lambda: settled(relay, 20), 60, "the sample events to settle")
    recorded = tmp_path / "requests.jsonl"
    recorded.write_text(emulator_client.requests_jsonl())
    assert recorded.read_text().strip(), "no request was recorded"
    check = subprocess.run(
        [
            sys.executable,
            str(ROOT.parent / "shared" / "tools" / "cio-contract-check"),
            str(recorded),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    keys = Keys(relay.prefix)
    stored = [relay.redis.xrange(keys.dlq), relay.redis.xrange(keys.activity)]
    assert API_KEY not in repr(stored)
    assert API_KEY not in relay.logs()
    assert API_KEY not in recorded.read_text()
