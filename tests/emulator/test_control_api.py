"""The control API: recorded requests, store views, counters, reset, faults, contract check."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from ulid import ULID

from worker.emulator import EmulatorClient, EmulatorServer

from .helpers import API_KEY, NOW, SITE_ID, FakeClock, Track, person_op

CONTRACT_CHECK = Path(__file__).resolve().parents[3] / "shared" / "tools" / "cio-contract-check"


def test_requests_are_recorded_with_response(track: Track, control: EmulatorClient) -> None:
    """Each Track request is recorded with method, path, query, body, status and answer."""
    track.call("POST", "/api/v1/customers/42/events?x=1", {"name": "Bought"})
    [record] = control.requests()
    assert (record["seq"], record["method"], record["path"], record["query"]) == (
        0,
        "POST",
        "/api/v1/customers/42/events",
        "x=1",
    )
    assert (record["body"], record["status"], record["response"]) == ({"name": "Bought"}, 200, {})
    assert record["time"] == NOW


def test_requests_since_and_limit(track: Track, control: EmulatorClient) -> None:
    """``since`` skips earlier sequence numbers and ``limit`` caps the answer."""
    for name in ("a", "b", "c", "d"):
        track.call("POST", "/api/v1/events", {"name": name})
    assert [r["body"]["name"] for r in control.requests(since=1, limit=2)] == ["b", "c"]


def test_answered_before_parsing_still_records_the_body(
    emulator: EmulatorServer, track: Track, control: EmulatorClient
) -> None:
    """A request answered by a fault is recorded with its parsed body and Retry-After."""
    emulator.set_faults(rate_limit_rps=1, retry_after_s=2)
    track.call("GET", "/api/v1/accounts/region")
    track.batch(person_op("event", name="a"))
    record = control.requests()[-1]
    assert record["body"] == {"batch": [person_op("event", name="a")]}
    assert (record["status"], record["response_headers"]) == (429, {"Retry-After": "2"})


def test_recorded_headers_never_hold_credentials(track: Track, control: EmulatorClient) -> None:
    """Authorization is stored as ``Basic [redacted]``; the key appears nowhere."""
    track.call("PUT", "/api/v1/customers/42", {"a": 1})
    track.session.auth = (SITE_ID, "wrong-key-value")
    track.call("PUT", "/api/v1/customers/42", {"a": 1})
    recorded = json.dumps(control.requests()) + control.requests_jsonl()
    secret = base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode()
    for needle in (API_KEY, secret, "wrong-key-value"):
        assert needle not in recorded
    assert {r["headers"]["Authorization"] for r in control.requests()} == {"Basic [redacted]"}


def test_counters_are_kept_beyond_max_recorded(clock: FakeClock) -> None:
    """Only the last ``max_recorded`` requests are kept; counters count them all."""
    with EmulatorServer(site_id=SITE_ID, api_key=API_KEY, clock=clock, max_recorded=2) as server:
        track, control = Track(server.url), EmulatorClient(server.url)
        for name in ("a", "b", "c"):
            track.call("POST", "/api/v1/events", {"name": name})
        assert [r["seq"] for r in control.requests()] == [1, 2]
        assert [r["seq"] for r in control.requests(since=0)] == [1, 2]
        counters = control.counters()
        assert (counters["requests_total"], counters["requests_recorded"]) == (3, 3)


def test_counters_group_by_route_and_status(track: Track, control: EmulatorClient) -> None:
    """Requests are counted by method and route template, then by status."""
    track.call("PUT", "/api/v1/customers/1", {"a": 1})
    track.call("PUT", "/api/v1/customers/2", {"a": "x" * 2000})
    track.batch(person_op("event", name="a"), person_op("page", name="/"))
    counters = control.counters()
    assert counters["requests"] == {
        "PUT /api/v1/customers/{identifier}": {"200": 1, "400": 1},
        "POST /api/v2/batch": {"200": 1},
    }
    assert counters["operations"] == {"identify": 1, "event": 1, "page": 1}
    assert (counters["operations_rejected"], counters["events_accepted"]) == (1, 2)


def test_events_view_names_person_and_endpoint(track: Track, control: EmulatorClient) -> None:
    """Events show the person's current identifiers and the endpoint they came through."""
    track.batch(person_op("event", {"id": "7"}, name="a"))
    track.batch(person_op("identify", {"id": "7"}, attributes={"email": "s@example.com"}))
    [event] = control.events()
    assert (event["person_id"], event["email"], event["endpoint"]) == (
        "7",
        "s@example.com",
        "/api/v2/batch",
    )
    assert control.events(since=1) == []


def test_reset_keeps_faults_unless_asked(emulator: EmulatorServer, control: EmulatorClient) -> None:
    """Reset forgets people, events, records and counters; faults only with ``faults``."""
    Track(emulator.url).call("PUT", "/api/v1/customers/1", {"a": 1})
    emulator.set_faults(latency_ms=5)
    control.reset()
    assert (control.people(), control.events(), control.requests()) == ([], [], [])
    assert control.counters()["requests_total"] == 0
    assert control.faults()["latency_ms"] == 5
    control.reset(faults=True)
    assert control.faults()["latency_ms"] == 0


def test_put_faults_merges_by_default(control: EmulatorClient) -> None:
    """PUT changes only the settings it names."""
    control.set_faults(rate_limit_rps=5, error_rates={"503": 0.1})
    faults = control.set_faults(latency_ms=20)
    assert (faults["rate_limit_rps"], faults["error_rates"], faults["latency_ms"]) == (
        5.0,
        {"503": 0.1},
        20.0,
    )


def test_put_faults_can_replace(control: EmulatorClient) -> None:
    """PUT with ``replace=true`` resets every setting it does not name."""
    control.set_faults(rate_limit_rps=5)
    faults = control.set_faults(replace=True, latency_ms=20)
    assert (faults["rate_limit_rps"], faults["latency_ms"]) == (None, 20.0)


@pytest.mark.parametrize(
    "body",
    [
        {"error_rates": {"503": 2}},
        {"error_rates": {"503": 0.7, "500": 0.7}},
        {"rate_limit_rps": -1},
        {"outage": "sometimes"},
        {"nonsense": 1},
        {"unauthorized": "yes"},
    ],
)
def test_bad_fault_settings_answer_400(emulator: EmulatorServer, body: dict[str, Any]) -> None:
    """An invalid fault setting is refused with 400 and leaves the faults unchanged."""
    response = requests.put(f"{emulator.url}/_emulator/faults", json=body, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"]
    assert emulator.faults.to_dict() == emulator.faults.__class__().to_dict()


def test_faults_view_shows_outage_remaining(
    emulator: EmulatorServer, control: EmulatorClient, clock: FakeClock
) -> None:
    """GET faults shows how long a timed outage still lasts."""
    control.set_faults(outage="503", outage_s=30)
    clock.advance(10)
    assert control.faults()["outage_remaining_s"] == 20


def test_health_reports_url_and_state(emulator: EmulatorServer, control: EmulatorClient) -> None:
    """Health says it serves, where, and the outage in force."""
    health = control.health()
    assert (health["ok"], health["url"], health["listening"], health["outage"]) == (
        True,
        emulator.url,
        True,
        "off",
    )


@pytest.mark.parametrize(
    ("method", "name", "status"), [("GET", "nothing", 404), ("GET", "reset", 405)]
)
def test_unknown_control_routes(
    emulator: EmulatorServer, method: str, name: str, status: int
) -> None:
    """Unknown control paths answer 404, known ones with another method 405."""
    response = requests.request(method, f"{emulator.url}/_emulator/{name}", timeout=5)
    assert response.status_code == status


def test_lean_mode_keeps_ids_and_counts_only(clock: FakeClock) -> None:
    """In lean mode bodies, event data and attributes are dropped but ids and counts stay."""
    with EmulatorServer(site_id=SITE_ID, api_key=API_KEY, clock=clock, lean=True) as server:
        track, control = Track(server.url), EmulatorClient(server.url)
        ulid = str(ULID())
        track.batch(
            person_op("identify", attributes={"plan": "pro"}),
            person_op("event", name="a", id=ulid, attributes={"big": "x" * 100}),
        )
        [record], [event], [person] = control.requests(), control.events(), control.people()
        assert "body" not in record
        assert (event["id"], event["data"]) == (ulid, None)
        assert (person["id"], person["attributes"]) == ("42", {})
        assert control.counters()["events_accepted"] == 1


def _send_relay_like_requests(track: Track) -> None:
    ts = 1_700_000_000
    track.call("GET", "/api/v1/accounts/region")
    track.call(
        "PUT",
        "/api/v1/customers/ada%40example.com",
        {"email": "ada@example.com", "plan": "pro", "created_at": ts, "vip": True},
    )
    track.call(
        "POST",
        "/api/v1/customers/ada%40example.com/events",
        {"name": "Bought", "id": str(ULID()), "timestamp": ts, "data": {"price": 9.5}},
    )
    track.call(
        "POST",
        "/api/v1/events",
        {"name": "Viewed", "anonymous_id": "anon-1", "id": str(ULID()), "timestamp": ts},
    )
    track.batch(
        person_op("identify", {"email": "b@example.com"}, attributes={"plan": "free"}),
        person_op("event", {"id": "42"}, name="Added to cart", id=str(ULID()), timestamp=ts),
        person_op("page", {"id": "42"}, name="https://shop.example.com/", id=str(ULID())),
        person_op("screen", {"cio_id": "00000001"}, name="Home", timestamp=ts),
    )
    track.call("POST", "/api/v2/entity", person_op("identify", attributes={"a": 1}))


def _contract_check(path: Path) -> subprocess.CompletedProcess[str]:
    if not CONTRACT_CHECK.exists():
        pytest.skip(f"{CONTRACT_CHECK} is not present")
    return subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def recorded_file(tmp_path: Path) -> Iterator[Path]:
    """Where the jsonl export is written."""
    yield tmp_path / "requests.jsonl"


def test_jsonl_of_relay_like_requests_passes_contract_check(
    track: Track, control: EmulatorClient, recorded_file: Path
) -> None:
    """The jsonl export of valid requests conforms to Customer.io's published spec."""
    _send_relay_like_requests(track)
    assert [r["status"] for r in control.requests()] == [200] * 6
    recorded_file.write_text(control.requests_jsonl())
    result = _contract_check(recorded_file)
    assert result.returncode == 0, result.stdout
    assert "6 conform, 0 do not" in result.stdout


def test_jsonl_of_a_bad_request_fails_contract_check(
    track: Track, control: EmulatorClient, recorded_file: Path
) -> None:
    """The export carries the real body, so a request off the spec is caught."""
    track.batch(person_op("event", name="a", timestamp="2024-01-01T00:00:00Z"))
    recorded_file.write_text(control.requests_jsonl())
    assert _contract_check(recorded_file).returncode == 1


def test_jsonl_lines_have_the_checker_fields(track: Track, control: EmulatorClient) -> None:
    """Each jsonl line holds exactly method, path, headers and (for bodies) body."""
    track.call("GET", "/api/v1/accounts/region")
    track.call("POST", "/api/v1/events", {"name": "a"})
    lines = [json.loads(line) for line in control.requests_jsonl().splitlines()]
    assert [sorted(line) for line in lines] == [
        ["headers", "method", "path"],
        ["body", "headers", "method", "path"],
    ]
