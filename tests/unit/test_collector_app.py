"""The collector's routes over ASGI with an in-memory Redis: statuses, bodies, storage."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import fakeredis
import orjson
import pytest
from starlette.testclient import TestClient

from worker.collector.app import create_app
from worker.collector.sources import Source, Sources
from worker.keys import Keys
from worker.settings import Settings
from worker.workflow.loader import parse_workflow
from worker.workflow.store import encode as encode_workflow

SERVER_KEY = "server-secret-key"
CLIENT_KEY = "web-public-key"
ORIGIN = "https://shop.example"
SOURCES = Sources(
    (Source("api", "server", SERVER_KEY), Source("web", "client", CLIENT_KEY, (ORIGIN,)))
)
INBOX = Keys("t").inbox


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def client(server: fakeredis.FakeServer) -> Iterator[TestClient]:
    settings = Settings(redis_prefix="t", collect_max_lag=5)
    app = create_app(settings, client=fakeredis.FakeAsyncRedis(server=server), sources=SOURCES)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def stored(server: fakeredis.FakeServer):
    sync = fakeredis.FakeRedis(server=server)

    def read() -> list[dict[bytes, bytes]]:
        return [fields for _, fields in sync.xrange(INBOX)]

    return read


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_track_is_stored_with_its_source(client: TestClient, stored) -> None:
    """A track call with the key as Basic user is acknowledged and in the inbox."""
    r = client.post(
        "/v1/track", json={"userId": "u1", "event": "Bought"}, headers=basic(SERVER_KEY)
    )
    assert (r.status_code, r.json()) == (200, {"success": True})
    [fields] = stored()
    assert fields[b"source"] == b"api" and fields[b"source_kind"] == b"server"
    event = orjson.loads(fields[b"event"])
    assert event["type"] == "track" and event["event"] == "Bought"


def test_text_plain_body_with_key_inside(client: TestClient, stored) -> None:
    """analytics.js sends text/plain with writeKey in the body; the key is not stored."""
    body = orjson.dumps({"writeKey": CLIENT_KEY, "anonymousId": "a1", "type": "page"})
    r = client.post("/v1/p", content=body, headers={"Content-Type": "text/plain", "Origin": ORIGIN})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    [fields] = stored()
    assert fields[b"source_kind"] == b"client" and CLIENT_KEY.encode() not in fields[b"event"]


def test_beacon_path_takes_the_key_from_the_query(client: TestClient, stored) -> None:
    """RudderStack's beacon batch carries its key in ?writeKey=."""
    r = client.post(
        f"/beacon/v1/batch?writeKey={SERVER_KEY}",
        content=orjson.dumps({"batch": [{"type": "track", "event": "A", "userId": "u"}]}),
    )
    assert r.status_code == 200 and len(stored()) == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "missing write key"), (basic("wrong-key-123"), "unknown write key")],
)
def test_bad_keys_are_401(client: TestClient, stored, headers: dict[str, str], code: str) -> None:
    """No key or an unknown key: 401 with the reason, nothing stored."""
    r = client.post("/v1/track", json={"userId": "u", "event": "A"}, headers=headers)
    assert r.status_code == 401 and r.json()["message"] == code
    assert stored() == []


def test_one_bad_item_refuses_the_batch(client: TestClient, stored) -> None:
    """A batch with one bad event stores none and names the event's index."""
    batch = [{"type": "track", "event": "A", "userId": "u"}, {"type": "track", "userId": "u"}]
    r = client.post("/v1/batch", json={"batch": batch}, headers=basic(SERVER_KEY))
    assert r.status_code == 400 and r.json()["message"].startswith("event 1:")
    assert stored() == []


def test_client_key_from_a_foreign_origin_is_403(client: TestClient, stored) -> None:
    """A client source's key from an origin not on its list is refused, without CORS."""
    r = client.post(
        "/v1/t",
        json={"writeKey": CLIENT_KEY, "event": "A", "anonymousId": "a"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    assert stored() == []


def test_server_key_from_a_browser_is_403(client: TestClient, stored) -> None:
    """A server key is secret: a request from a page (with Origin) is refused."""
    r = client.post(
        "/v1/t", json={"event": "A", "userId": "u"}, headers={**basic(SERVER_KEY), "Origin": ORIGIN}
    )
    assert r.status_code == 403 and stored() == []


def test_oversized_request_is_413_unread(client: TestClient, stored) -> None:
    """A body declared over the limit is refused before it is read."""
    r = client.post("/v1/batch", content=b"x" * 600_000, headers=basic(SERVER_KEY))
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"


def test_backlog_over_the_limit_is_429(client: TestClient, server, stored) -> None:
    """With more entries waiting than CIO_COLLECT_MAX_LAG the answer is 429 + Retry-After."""
    batch = [{"type": "track", "event": "A", "userId": "u"}] * 6
    assert client.post("/v1/batch", json={"batch": batch}, headers=basic(SERVER_KEY)).is_success
    r = client.post("/v1/track", json={"event": "A", "userId": "u"}, headers=basic(SERVER_KEY))
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert len(stored()) == 6


def test_metrics_path_discards(client: TestClient, stored) -> None:
    """``/v1/m`` needs no key and stores nothing."""
    assert client.post("/v1/m", content=b'{"series":[]}').status_code == 200
    assert stored() == []


def test_preflight_for_an_allowed_origin(client: TestClient) -> None:
    """analytics.js' preflight asks for authorization and x-retry-count: both are allowed."""
    r = client.options(
        "/v1/t",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
        },
    )
    assert r.status_code == 204
    assert "x-retry-count" in r.headers["access-control-allow-headers"]
    assert r.headers["access-control-max-age"]


def test_config_serves_the_live_workflow_to_client_keys(client: TestClient, server) -> None:
    """``/v1/config`` answers client keys with the workflow's browser part; others 401."""
    workflow = parse_workflow(
        '[events."Added to cart"]\nenabled = true\n'
        '[[events."Added to cart".client]]\non = "click"\nselector = "button.add"\n'
    )
    fakeredis.FakeRedis(server=server).hset(
        Keys("t").workflow, "workflow", encode_workflow(workflow)
    )
    r = client.get(f"/v1/config?writeKey={CLIENT_KEY}", headers={"Origin": ORIGIN})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    assert r.json()["events"]["Added to cart"]["client"] == [
        {"on": "click", "selector": "button.add"}
    ]
    assert client.get(f"/v1/config?writeKey={SERVER_KEY}").status_code == 401


def test_tracker_is_cached_and_revalidated(client: TestClient) -> None:
    """``/tracker.js`` has a cache lifetime and answers its ETag with 304."""
    r = client.get("/tracker.js")
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    assert r.headers["content-type"].startswith("application/javascript")
    again = client.get("/tracker.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_health_reports_redis(client: TestClient) -> None:
    """``/health`` is 200 while Redis answers."""
    assert client.get("/health").json() == {"ok": True}
