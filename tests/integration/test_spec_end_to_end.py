"""The rest of the Segment spec through the whole stack: real SDKs (segment-analytics-python,
rudder-sdk-python) and CustomerLabs-shaped batches post to a real collector process, a
Celery worker relays from a real redis-server, and the emulator ends up holding the
objects, relationships, merges, devices, suppressions and deletions Customer.io would;
consent-refused events are skipped and counted; every request passes the contract check.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import requests

from tests.integration.collector_proc import SERVER_KEY, Collector, basic, collector_env
from tests.integration.conftest import ROOT, Relay, wait_until
from worker.emulator import EmulatorClient
from worker.keys import Keys
from worker.metrics import registry

pytestmark = pytest.mark.integration

CONTRACT_CHECK = ROOT.parent / "shared" / "tools" / "cio-contract-check"
WORKFLOW = """
default = "on"
page_view_event = "Page viewed"

[consent]
required = ["advertising"]
missing = "allow"

[events."Create group"]
object_type_id = "1"
"""
ADA, OLD, CAROL, DAN = "ada@example.com", "old@example.com", "carol@example.com", "dan@example.com"


@pytest.fixture
def stack(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> Iterator[tuple[Collector, Relay, EmulatorClient]]:
    """A collector and a relay (one worker process, so batches run in inbox order) over a
    fresh prefix, identifying people by email."""
    workflow = tmp_path / "workflow.toml"
    workflow.write_text(WORKFLOW)
    env = {**relay_env, "CIO_WORKFLOW_FILE": str(workflow), "CIO_IDENTIFY_BY": "identify_by_email"}
    collector = Collector(
        collector_env(env["CIO_REDIS_URL"], env["CIO_REDIS_PREFIX"], tmp_path), tmp_path
    ).start()
    relay = Relay(env, tmp_path).start(concurrency=1)
    try:
        yield collector, relay, emulator_client
    finally:
        relay.stop()
        collector.stop()


def settle(relay: Relay, count: int) -> None:
    """Wait until ``count`` outcomes in all are final and the inbox is empty."""
    keys = Keys(relay.prefix)

    def done() -> bool:
        counts = relay.redis.hgetall(keys.counters)
        final = sum(int(counts.get(k.encode(), 0)) for k in ("delivered", "skipped", "dead"))
        return final >= count and relay.redis.xlen(keys.inbox) == 0

    wait_until(done, 60, f"{count} final outcomes")


def post_batch(collector: Collector, items: list[Any]) -> None:
    """Post CustomerLabs-shaped events through the collector's batch endpoint."""
    response = requests.post(
        f"{collector.url}/v1/batch", json={"batch": items}, headers=basic(SERVER_KEY), timeout=10
    )
    assert response.status_code == 200, response.text


def wrapped(value: Any) -> dict[str, Any]:
    kind = "number" if isinstance(value, int | float) else "string"
    return {"t": kind, "v": value}


def person(emulator: EmulatorClient, email: str) -> dict[str, Any] | None:
    found = [p for p in emulator.people() if p["email"] == email]
    return found[0] if found else None


def test_objects_merges_devices_privacy_and_consent_through_the_stack(
    stack: tuple[Collector, Relay, EmulatorClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector, relay, emulator = stack
    from segment.analytics import Client

    segment = Client(write_key=SERVER_KEY, host=collector.url, sync_mode=True, max_retries=0)
    ios = {"device": {"token": "tok-ios-1", "type": "iOS"}, "app": {"version": "2.1.0"}}

    # -- 1. people, a group with relationship attributes, a device, consent ----------------
    segment.identify("u-ada", {"email": ADA, "name": "Ada"})
    segment.identify("u-old", {"email": OLD, "plan": "legacy"})
    segment.track("u-old", "Signed up", {"via": "web"})
    segment.group(
        "u-ada",
        "acme",
        {
            "name": "Acme Corp",
            "plan": "enterprise",
            "relationshipAttributes": {"role": "admin", "since": "2026-01-15T00:00:00Z"},
        },
    )
    segment.group(anonymous_id="anon-carol", group_id="acme", traits={"name": "Acme Corp"})
    segment.track("u-ada", "Application Installed", {}, context=ios)
    segment.track(
        "u-ada",
        "Purchased",
        {"total": 1},
        context={"consent": {"categoryPreferences": {"advertising": False}}},
    )
    segment.track(
        "u-ada",
        "Purchased again",
        {"total": 2},
        context={"consent": {"categoryPreferences": {"advertising": True}}},
    )
    settle(relay, 8)

    [acme] = emulator.objects()
    assert (acme["object_type_id"], acme["object_id"]) == ("1", "acme")
    assert acme["attributes"] == {"name": "Acme Corp", "plan": "enterprise"}
    [related] = acme["relationships"]
    assert related["email"] == ADA
    assert related["relationship_attributes"] == {"role": "admin", "since": 1768435200}
    assert [a["anonymous_id"] for a in acme["anonymous_relationships"]] == ["anon-carol"]
    ada = person(emulator, ADA)
    assert ada is not None
    assert ada["devices"] == [
        {
            "token": "tok-ios-1",
            "platform": "ios",
            "last_used": ada["devices"][0]["last_used"],
            "attributes": {"app_version": "2.1.0"},
        }
    ]
    names = [e["name"] for e in emulator.events()]
    assert "Purchased" not in names and "Purchased again" in names

    # -- 2. merge (alias), memory follows; the anonymous relationship carries over ---------
    segment.alias("u-old", "u-ada")
    segment.track("u-old", "After merge", {})
    segment.identify("u-carol", {"email": CAROL}, anonymous_id="anon-carol")
    settle(relay, 11)

    assert person(emulator, OLD) is None
    ada = person(emulator, ADA)
    assert ada is not None and ada["attributes"]["plan"] == "legacy"
    by_name = {e["name"]: e for e in emulator.events()}
    assert by_name["Signed up"]["email"] == ADA  # the merged person's events moved
    assert by_name["After merge"]["email"] == ADA  # the merged-away user id names Ada now
    [acme] = emulator.objects()
    assert sorted(r["email"] for r in acme["relationships"]) == [ADA, CAROL]
    assert acme["anonymous_relationships"] == []

    # -- 3. RudderStack's SDK: relationship, device and object removal, privacy ------------
    import rudderstack.analytics as rudder

    monkeypatch.setattr(rudder, "write_key", SERVER_KEY)
    monkeypatch.setattr(rudder, "dataPlaneUrl", collector.url)
    monkeypatch.setattr(rudder, "sync_mode", True)
    monkeypatch.setattr(rudder, "max_retries", 0)
    monkeypatch.setattr(rudder, "default_client", None)
    rudder.identify("u-dan", {"email": DAN})
    rudder.group("u-dan", "beta", {"name": "Beta", "object_type_id": "2"})
    rudder.track("u-carol", "Relationship Deleted", {}, context={"groupId": "acme"})
    rudder.track("u-ada", "Device Deleted", {}, context={"device": {"token": "tok-ios-1"}})
    rudder.track("u-dan", "Object Deleted", {"object_type_id": "2"}, context={"groupId": "beta"})
    rudder.track(
        "u-dan",
        "Denied by Rudder",
        {},
        context={"consentManagement": {"deniedConsentIds": ["advertising"]}},
    )
    rudder.track("u-carol", "User Suppressed", {})
    rudder.identify("u-carol2", {"email": CAROL, "back": True})
    rudder.track("u-dan", "User Deleted", {})
    settle(relay, 20)

    [acme] = emulator.objects()  # beta is deleted
    assert [r["email"] for r in acme["relationships"]] == [ADA]
    ada = person(emulator, ADA)
    assert ada is not None and ada["devices"] == []
    assert person(emulator, CAROL) is None  # suppressed, and not re-added by an identify
    assert person(emulator, DAN) is None  # deleted
    keys = Keys(relay.prefix)
    assert relay.redis.get(keys.identity("user", "u-dan")) is None  # forgotten
    assert relay.redis.get(keys.identity("user", "u-ada")) == ADA.encode()

    # -- 4. CustomerLabs-shaped events: a group with igb, consent, an alias-free merge -----
    post_batch(
        collector,
        [
            {
                "method": "group",
                "customerlabs_user_id": "cl-1",
                "properties": {
                    "customProperties": {
                        "group_traits": {"t": "object", "v": {"name": wrapped("Gamma")}},
                        "identify_by_company": {"t": "string", "v": "gamma.test", "igb": True},
                        "identify_by_email": {"t": "string", "v": ADA, "ib": True},
                    }
                },
            },
            {
                "method": "track",
                "event_name": "Consent refused here",
                "properties": {
                    "customProperties": {
                        "identify_by_email": {"t": "string", "v": ADA, "ib": True},
                        "consent": {"t": "object", "v": {"advertising": wrapped("denied")}},
                    }
                },
            },
            {
                "method": "track",
                "event_name": "Consent granted here",
                "properties": {
                    "customProperties": {
                        "identify_by_email": {"t": "string", "v": ADA, "ib": True},
                        "consent": {"t": "object", "v": {"advertising": wrapped("granted")}},
                    }
                },
            },
        ],
    )
    settle(relay, 23)
    gamma = next(o for o in emulator.objects() if o["object_id"] == "gamma.test")
    assert gamma["attributes"] == {"name": "Gamma"}
    assert [r["email"] for r in gamma["relationships"]] == [ADA]
    names = [e["name"] for e in emulator.events()]
    assert "Consent granted here" in names and "Consent refused here" not in names

    # -- every outcome accounted for; consent_denied counted and shown like the others ----
    counts = {k.decode(): int(v) for k, v in relay.redis.hgetall(keys.counters).items()}
    assert counts.get("skipped:consent_denied") == 3
    assert counts.get("dead", 0) == 0, relay.cli("dlq", "list").stdout
    stats = relay.cli("stats")
    assert stats.returncode == 0 and "consent_denied" in stats.stdout
    scrape = prometheus_client.generate_latest(registry(relay.redis, keys)).decode()
    assert 'cio_relay_skipped_total{reason="consent_denied"} 3.0' in scrape

    # -- what was sent conforms to Customer.io's published spec ---------------------------
    recorded = tmp_path / "requests.jsonl"
    recorded.write_text(emulator.requests_jsonl())
    check = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(recorded)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    bodies = recorded.read_text()
    for action in (
        '"action":"identify_anonymous"',
        '"action":"merge"',
        '"action":"add_device"',
        '"action":"delete_device"',
        '"action":"delete_relationships"',
        '"action":"suppress"',
        '"action":"delete"',
    ):
        assert action in bodies, action


def consent_item(fmt: str, state: str, name: str) -> dict[str, Any]:
    """One event for Ada in ``fmt`` whose "advertising" consent is ``state``."""
    if fmt == "customerlabs":
        custom: dict[str, Any] = {"identify_by_email": {"t": "string", "v": ADA, "ib": True}}
        if state != "missing":
            custom["consent"] = {"t": "object", "v": {"advertising": wrapped(state)}}
        return {"method": "track", "event_name": name, "properties": {"customProperties": custom}}
    item: dict[str, Any] = {"type": "track", "event": name, "userId": "u-ada", "context": {}}
    item["context"]["traits"] = {"email": ADA}
    if fmt == "segment" and state != "missing":
        prefs = {"advertising": state == "granted"}
        item["context"]["consent"] = {"categoryPreferences": prefs}
    if fmt == "rudderstack" and state != "missing":
        denied = ["advertising"] if state == "denied" else []
        item["context"]["consentManagement"] = {"deniedConsentIds": denied}
    return item


def test_consent_matrix_through_the_stack_and_a_live_workflow_change(
    stack: tuple[Collector, Relay, EmulatorClient], tmp_path: Path
) -> None:
    """Every sender format x granted/denied/missing, under missing = "allow", then under
    missing = "deny" applied to the live workflow without a restart."""
    collector, relay, emulator = stack
    formats, states = ("segment", "rudderstack", "customerlabs"), ("granted", "denied", "missing")
    sent = 0
    for missing in ("allow", "deny"):
        if missing == "deny":
            changed = tmp_path / "deny.toml"
            changed.write_text(WORKFLOW.replace('missing = "allow"', 'missing = "deny"'))
            applied = relay.cli("workflow", "apply", str(changed))
            # No restart: the relay reads the live workflow for every batch.
            assert applied.returncode == 0, applied.stderr
        items = [
            consent_item(fmt, state, f"{fmt} {state} {missing}")
            for fmt in formats
            for state in states
        ]
        post_batch(collector, items)
        sent += len(items)
        settle(relay, sent)
    arrived = {e["name"] for e in emulator.events()}
    for missing in ("allow", "deny"):
        for fmt in formats:
            for state in states:
                expected = state == "granted" or (state == "missing" and missing == "allow")
                assert (f"{fmt} {state} {missing}" in arrived) == expected, (fmt, state, missing)
    counts = {
        k.decode(): int(v) for k, v in relay.redis.hgetall(Keys(relay.prefix).counters).items()
    }
    assert counts["skipped:consent_denied"] == 3 + 6
    assert counts["delivered"] == 6 + 3
