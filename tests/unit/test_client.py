"""Tests for the Customer.io Track API client and its status classification."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from worker.batching import batch_body
from worker.client import (
    ItemError,
    TrackClient,
    error_message,
    parse_item_errors,
    parse_retry_after,
    raise_for_status,
)
from worker.emulator.client import EmulatorClient
from worker.emulator.server import EmulatorServer
from worker.errors import PauseDelivery, Rejected, RetryLater
from worker.mapping import encode

NOW = 1_700_000_000.0
API_KEY = "sekrit-api-key-123"


@pytest.mark.parametrize("status", [200, 201, 204, 207])
def test_success_statuses_do_not_raise(status: int) -> None:
    """2xx statuses, 207 included, are not errors."""
    raise_for_status(status, {}, "", NOW)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (301, PauseDelivery),
        (302, PauseDelivery),
        (401, PauseDelivery),
        (403, PauseDelivery),
        (400, Rejected),
        (404, Rejected),
        (413, Rejected),
        (422, Rejected),
        (501, Rejected),
        (408, RetryLater),
        (429, RetryLater),
        (500, RetryLater),
        (502, RetryLater),
        (503, RetryLater),
    ],
)
def test_status_classification(status: int, error: type[Exception]) -> None:
    """Each status maps to the outcome class that says what the worker does."""
    with pytest.raises(error) as info:
        raise_for_status(status, {}, "body", NOW)
    assert type(info.value) is error
    assert info.value.status == status  # type: ignore[attr-defined]


def test_redirect_message_names_location() -> None:
    """A redirect names where it pointed so the region can be fixed."""
    with pytest.raises(PauseDelivery, match=r"https://track-eu\.customer\.io"):
        raise_for_status(301, {"Location": "https://track-eu.customer.io"}, "", NOW)


def test_retry_later_carries_retry_after() -> None:
    """A 429's Retry-After reaches the RetryLater it raises."""
    with pytest.raises(RetryLater) as info:
        raise_for_status(429, {"Retry-After": "7"}, "", NOW)
    assert info.value.retry_after_s == 7.0


def test_excerpt_is_bounded() -> None:
    """The body excerpt kept on an error is at most 500 characters."""
    with pytest.raises(Rejected) as info:
        raise_for_status(400, {}, "x" * 2000, NOW)
    assert len(info.value.excerpt) == 500


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-5", 0.0),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW - 30, usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
    ids=["int", "float", "zero", "negative", "date", "past-date", "garbage", "empty", "none"],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is read as seconds or an HTTP date relative to now; garbage is None."""
    assert parse_retry_after(value, NOW) == expected


def test_parse_item_errors_reads_batch_indexes() -> None:
    """A 207 body lists item errors by batch index with their reason, field and message."""
    text = json.dumps(
        {
            "errors": [
                {"batch_index": 2, "reason": "required", "field": "identifiers", "message": "m"},
                {"batch_index": 0},
                {"batch_index": "x", "reason": "ignored"},
                "junk",
            ]
        }
    )
    assert parse_item_errors(text) == (
        ItemError(2, "required; identifiers; m"),
        ItemError(0, "rejected"),
    )


@pytest.mark.parametrize("text", ["not json", "[]", '{"errors": "x"}', "{}"])
def test_parse_item_errors_tolerates_odd_bodies(text: str) -> None:
    """A body that is not the documented shape yields no item errors."""
    assert parse_item_errors(text) == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"meta": {"error": "bad timestamp"}}', "bad timestamp"),
        ('{"meta": {"errors": ["a is bad", "b is bad"]}}', "a is bad; b is bad"),
        ("plain text", "plain text"),
        ("[1, 2]", "[1, 2]"),
    ],
    ids=["error", "errors", "not-json", "not-object"],
)
def test_error_message(text: str, expected: str) -> None:
    """Both documented 400 body shapes give a message; anything else gives the text."""
    assert error_message(text) == expected


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(port=0, site_id="site", api_key=API_KEY).start()
    try:
        yield server
    finally:
        server.stop()


def _client(url: str, key: str = API_KEY) -> TrackClient:
    return TrackClient(url, "site", SecretStr(key), clock=lambda: NOW)


def _identify(email: str) -> bytes:
    return encode(
        {
            "type": "person",
            "identifiers": {"email": email},
            "action": "identify",
            "attributes": {"plan": "pro"},
        }
    )


def test_batch_success_against_emulator(emulator: EmulatorServer) -> None:
    """A valid batch is accepted with 200 and the person is stored."""
    response = _client(emulator.url).send_batch(batch_body([_identify("ada@example.com")]))
    assert (response.status, response.item_errors) == (200, ())
    people = EmulatorClient(emulator.url).people()
    assert len(people) == 1


def test_batch_207_returns_item_errors(emulator: EmulatorServer) -> None:
    """A batch with one invalid operation comes back as 207 naming its index."""
    bad = encode({"type": "person", "action": "identify", "attributes": {}})
    response = _client(emulator.url).send_batch(batch_body([_identify("a@example.com"), bad]))
    assert response.status == 207
    assert [e.index for e in response.item_errors] == [1]


def test_anonymous_event_accepted(emulator: EmulatorServer) -> None:
    """A v1 anonymous event is accepted and stored."""
    body = encode({"name": "Viewed", "anonymous_id": "anon-1", "data": {}})
    assert _client(emulator.url).send_anonymous_event(body).status == 200
    events = EmulatorClient(emulator.url).events()
    assert [e.get("name") for e in events] == ["Viewed"]


def test_wrong_key_pauses_delivery(emulator: EmulatorServer) -> None:
    """Bad credentials raise PauseDelivery with status 401."""
    with pytest.raises(PauseDelivery) as info:
        _client(emulator.url, key="wrong").send_batch(batch_body([_identify("a@example.com")]))
    assert info.value.status == 401


def test_repr_hides_api_key(emulator: EmulatorServer) -> None:
    """The client's repr never contains the API key."""
    text = repr(_client(emulator.url))
    assert API_KEY not in text
    assert emulator.url in text


def test_check_region_returns_payload(emulator: EmulatorServer) -> None:
    """The region check returns the JSON object the server answered."""
    assert isinstance(_client(emulator.url).check_region(), dict)


def test_connection_refused_is_retry_later() -> None:
    """A server that is not there is a RetryLater, not a crash."""
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    with pytest.raises(RetryLater):
        _client(f"http://127.0.0.1:{port}").send_batch(b"{}")


class _Redirect(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_redirect_is_not_followed() -> None:
    """A 302 pauses delivery and is not followed to its Location."""
    _Redirect.hits = []
    server = HTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(PauseDelivery) as info:
            _client(url).send_batch(b'{"batch":[]}')
        assert info.value.status == 302
        assert _Redirect.hits == ["/api/v2/batch"]
    finally:
        server.shutdown()
        server.server_close()
