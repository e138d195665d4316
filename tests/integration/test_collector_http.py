"""The collector over real HTTP, one real process in front of a real redis-server: every
path, every way of giving the key, bodies as SDKs send them, stamps and CORS; each case
asserts on what the inbox holds."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import requests

from tests.integration.collector_proc import (
    CLIENT_KEY,
    ORIGIN,
    OTHER_ORIGIN,
    SERVER_KEY,
    Collector,
    basic,
    collector_env,
    inbox,
    inbox_raw,
)
from tests.integration.conftest import free_port
from worker.keys import Keys

pytestmark = pytest.mark.integration

EXAMPLES: dict[str, dict[str, Any]] = {
    "identify": {"userId": "u1", "traits": {"email": "ada@example.com"}},
    "track": {"userId": "u1", "event": "Purchased", "properties": {"total": 5}},
    "page": {"anonymousId": "a1", "name": "Home"},
    "screen": {"userId": "u1", "name": "Main"},
    "group": {"userId": "u1", "groupId": "g1"},
    "alias": {"userId": "u1", "previousId": "a1"},
}
SHORT = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias"}


class Running:
    """The module's collector and where it stores."""

    def __init__(self, collector: Collector, redis_url: str, prefix: str) -> None:
        self.collector = collector
        self.url = collector.url
        self.redis_url = redis_url
        self.prefix = prefix
        self.redis = redis.Redis.from_url(redis_url)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return requests.post(f"{self.url}{path}", data=data, timeout=10, **kwargs)

    def stored(self) -> list[dict[str, Any]]:
        return inbox(self.redis_url, self.prefix)

    def by_id(self) -> dict[str, dict[str, Any]]:
        out = {}
        for entry in self.stored():
            event = entry["event"]
            if isinstance(event, dict):
                out[event.get("messageId") or event.get("message_id")] = entry
        return out


@pytest.fixture(scope="module")
def running(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    workdir = tmp_path_factory.mktemp("collector-http")
    prefix = f"ch{os.getpid()}x{free_port()}"
    collector = Collector(collector_env(redis_server, prefix, workdir), workdir).start()
    try:
        yield Running(collector, redis_server, prefix)
    finally:
        collector.kill()


@pytest.fixture
def service(running: Running) -> Running:
    """The module's collector with an empty inbox."""
    running.redis.delete(Keys(running.prefix).inbox)
    return running


def ok(response: requests.Response) -> None:
    assert (response.status_code, response.json()) == (200, {"success": True}), response.text


def test_every_path_stores_its_call_with_its_source(service: Running) -> None:
    """Long paths with the server key (Basic, body, query in turn), short paths as
    analytics.js calls them (text/plain, Basic and body key, from an allowed origin)."""
    ways = ("basic", "body", "query")
    for n, (kind, example) in enumerate(EXAMPLES.items()):
        body = {**example, "messageId": f"long-{kind}"}
        way = ways[n % 3]
        headers = basic(SERVER_KEY) if way == "basic" else {"Content-Type": "application/json"}
        if way == "body":
            body["writeKey"] = SERVER_KEY
        path = f"/v1/{kind}" + (f"?writeKey={SERVER_KEY}" if way == "query" else "")
        ok(service.post(path, body, headers=headers))
    for short, kind in SHORT.items():
        body = {**EXAMPLES[kind], "messageId": f"short-{short}", "writeKey": CLIENT_KEY}
        headers = {**basic(CLIENT_KEY), "Content-Type": "text/plain", "Origin": ORIGIN}
        response = service.post(f"/v1/{short}", body, headers=headers)
        ok(response)
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    batch = {
        "batch": [{**EXAMPLES[k], "type": k, "messageId": f"batch-{k}"} for k in SHORT.values()]
    }
    ok(service.post("/v1/batch", batch, headers=basic(SERVER_KEY)))
    b = {"batch": [{**EXAMPLES["track"], "type": "track", "messageId": "b-track"}]}
    ok(service.post("/v1/b", {**b, "writeKey": CLIENT_KEY}, headers={"Origin": ORIGIN}))

    stored = service.by_id()
    assert len(service.stored()) == 6 + 6 + 6 + 1
    for kind in EXAMPLES:
        entry = stored[f"long-{kind}"]
        assert (entry["event"]["type"], entry["source"], entry["source_kind"]) == (
            kind,
            "backend",
            "server",
        )
        assert stored[f"batch-{kind}"]["event"]["type"] == kind
        assert stored[f"batch-{kind}"]["source"] == "backend"
    for short, kind in SHORT.items():
        entry = stored[f"short-{short}"]
        assert (entry["event"]["type"], entry["source"], entry["source_kind"]) == (
            kind,
            "web",
            "client",
        )
    assert stored["b-track"]["source_kind"] == "client"
    assert stored["long-track"]["event"]["properties"] == {"total": 5}


def test_beacon_path_takes_the_key_from_the_query(service: Running) -> None:
    """RudderStack's sendBeacon path: text/plain batch, key only in ?writeKey=."""
    body = {"batch": [{**EXAMPLES["page"], "type": "page", "messageId": "beacon-1"}]}
    response = service.post(
        f"/beacon/v1/batch?writeKey={CLIENT_KEY}",
        body,
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN},
    )
    ok(response)
    (entry,) = service.stored()
    assert entry["event"]["messageId"] == "beacon-1"
    assert (entry["source"], entry["source_kind"]) == ("web", "client")


def test_v1_m_is_accepted_without_a_key_and_stores_nothing(service: Running) -> None:
    """analytics-next's metrics: 200 with no key at all, nothing in the inbox."""
    metrics = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}
    response = service.post("/v1/m", metrics, headers={"Content-Type": "text/plain"})
    ok(response)
    assert service.stored() == []


def test_gzip_batch_merges_top_level_context_and_integrations(service: Running) -> None:
    """rudder-sdk-python's shape: gzipped /v1/batch; the batch's context and integrations
    reach every item, the item's own keys winning."""
    body = {
        "batch": [
            {
                **EXAMPLES["track"],
                "type": "track",
                "messageId": "merge-own",
                "context": {"page": {"url": "https://own.example/"}, "locale": "fr-FR"},
                "integrations": {"Mixpanel": True},
            },
            {**EXAMPLES["identify"], "type": "identify", "messageId": "merge-bare"},
        ],
        "context": {
            "library": {"name": "analytics-python", "version": "2.3"},
            "page": {"url": "https://shared.example/", "title": "Shared"},
            "locale": "en-US",
        },
        "integrations": {"All": True, "Mixpanel": False},
    }
    response = service.post(
        "/v1/batch",
        gzip.compress(json.dumps(body).encode()),
        headers={
            **basic(SERVER_KEY),
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
        },
    )
    ok(response)
    stored = service.by_id()
    own = stored["merge-own"]["event"]
    assert own["context"] == {
        "library": {"name": "analytics-python", "version": "2.3"},
        "page": {"url": "https://own.example/", "title": "Shared"},
        "locale": "fr-FR",
    }
    assert own["integrations"] == {"All": True, "Mixpanel": True}
    bare = stored["merge-bare"]["event"]
    assert bare["context"] == body["context"]
    assert bare["integrations"] == {"All": True, "Mixpanel": False}
    assert bare["traits"] == {"email": "ada@example.com"}


def test_customerlabs_items_in_a_batch_are_stored_as_sent(service: Running) -> None:
    """A CustomerLabs envelope (method, message_id) and the queue's list form, side by side."""
    envelope = {
        "method": "trackClick",
        "event_name": "Added to cart",
        "message_id": "cl-envelope",
        "customerlabs_user_id": "cl_visitor_1",
        "properties": {"customProperties": {"value": {"t": "number", "v": "19.5"}}},
    }
    listed = [
        "trackClick",
        "Added to cart",
        {"customProperties": {"sku": {"t": "string", "v": "s1"}}},
    ]
    response = service.post("/v1/batch", {"batch": [envelope, listed], "writeKey": SERVER_KEY})
    ok(response)
    first, second = service.stored()
    assert first["event"]["method"] == "trackClick"
    assert first["event"]["message_id"] == "cl-envelope"
    assert first["event"]["properties"] == envelope["properties"]
    assert "receivedAt" in first["event"]
    assert second["event"] == listed
    assert {first["source"], second["source"]} == {"backend"}


def test_the_write_key_is_never_stored(service: Running) -> None:
    """Whichever way the key came (body of a call, body of a batch and its items, query,
    Basic), the inbox holds no trace of it."""
    track = {**EXAMPLES["track"], "writeKey": SERVER_KEY}
    ok(service.post("/v1/track", track))
    item = {**EXAMPLES["track"], "type": "track", "writeKey": SERVER_KEY}
    ok(service.post("/v1/batch", {"batch": [item], "writeKey": SERVER_KEY}))
    ok(service.post(f"/v1/t?writeKey={SERVER_KEY}", EXAMPLES["track"]))
    ok(service.post("/v1/track", EXAMPLES["track"], headers=basic(SERVER_KEY)))
    assert len(service.stored()) == 4
    raw = inbox_raw(service.redis_url, service.prefix)
    assert SERVER_KEY.encode() not in raw
    assert b"writeKey" not in raw


def test_received_at_is_set_and_a_fast_clock_is_corrected(service: Running) -> None:
    """A sender whose clock is an hour ahead: its timestamp moves back by that hour
    (receivedAt minus the 5 s between its timestamp and its sentAt); its own is kept."""
    ahead = datetime.now(UTC) + timedelta(hours=1)
    sent_at = _iso(ahead)
    own = _iso(ahead - timedelta(seconds=5))
    body = {**EXAMPLES["track"], "messageId": "skew", "timestamp": own, "sentAt": sent_at}
    ok(service.post("/v1/track", body, headers=basic(SERVER_KEY)))
    ok(
        service.post(
            "/v1/track", {**EXAMPLES["track"], "messageId": "plain"}, headers=basic(SERVER_KEY)
        )
    )
    stored = service.by_id()
    event = stored["skew"]["event"]
    received = _parse(event["receivedAt"])
    assert abs(received - datetime.now(UTC)) < timedelta(minutes=5)
    assert event["originalTimestamp"] == own
    assert _parse(event["timestamp"]) == received - timedelta(seconds=5)
    moved = _parse(own) - _parse(event["timestamp"])
    assert timedelta(minutes=59) < moved < timedelta(minutes=61)
    plain = stored["plain"]["event"]
    assert plain["timestamp"] == plain["receivedAt"]
    assert "originalTimestamp" not in plain


def test_message_id_is_assigned_and_kept_by_a_retry(service: Running) -> None:
    """No messageId: one is made from the content, the same when the SDK retries the call
    (a later sentAt), another for another call."""
    call = {**EXAMPLES["track"], "timestamp": "2026-03-02T10:15:00.000Z"}
    for sent in ("2026-03-02T10:15:01.000Z", "2026-03-02T10:15:31.000Z"):
        ok(service.post("/v1/track", {**call, "sentAt": sent}, headers=basic(SERVER_KEY)))
    for sent in ("2026-03-02T10:15:01.000Z", "2026-03-02T10:15:31.000Z"):
        batch = {"batch": [{**call, "type": "track"}], "sentAt": sent}
        ok(service.post("/v1/batch", batch, headers=basic(SERVER_KEY)))
    other = {**call, "properties": {"total": 6}}
    ok(service.post("/v1/track", other, headers=basic(SERVER_KEY)))
    ids = [entry["event"]["messageId"] for entry in service.stored()]
    assert len(ids) == 5
    assert all(isinstance(i, str) and i for i in ids)
    assert ids[0] == ids[1] == ids[2] == ids[3]
    assert ids[4] != ids[0]


def test_cors_preflight_answers_allowed_origins_only(service: Running) -> None:
    """analytics-next's preflight (authorization, content-type, x-retry-count): an allowed
    origin learns it may send them and for how long; another origin learns nothing."""
    asked = "authorization,content-type,x-retry-count"
    allowed = requests.options(
        f"{service.url}/v1/t",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
        timeout=10,
    )
    assert allowed.status_code in (200, 204)
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    granted = {
        h.strip().lower() for h in allowed.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "x-retry-count", "content-type"} <= granted
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert int(allowed.headers["Access-Control-Max-Age"]) > 0
    refused = requests.options(
        f"{service.url}/v1/t",
        headers={
            "Origin": OTHER_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert "Access-Control-Allow-Headers" not in refused.headers
    assert service.stored() == []


def test_collector_runs_without_customerio_credentials(service: Running) -> None:
    """Started with no CIO_SITE_ID / CIO_API_KEY at all, it answers and stores."""
    env = service.collector.env
    assert not {"CIO_SITE_ID", "CIO_API_KEY", "CIO_APP_API_KEY"} & set(env)
    ok(
        service.post(
            "/v1/track", {**EXAMPLES["track"], "messageId": "no-creds"}, headers=basic(SERVER_KEY)
        )
    )
    assert list(service.by_id()) == ["no-creds"]
    health = requests.get(f"{service.url}/health", timeout=10)
    assert (health.status_code, health.json()) == (200, {"ok": True})


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
