"""The collector's pure stages: decoding, splitting, merging, stamping and checking bodies."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime

import orjson
import pytest

from worker.collector import payload
from worker.collector.payload import Refused

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def refused(call, *args, **kw) -> Refused:
    with pytest.raises(Refused) as info:
        call(*args, **kw)
    return info.value


def test_plain_body_is_returned_as_is() -> None:
    """A body without Content-Encoding is not touched."""
    assert payload.decode_body(b'{"a":1}', None, 100) == b'{"a":1}'


def test_gzip_body_is_inflated() -> None:
    """``Content-Encoding: gzip`` (rudder-sdk-python's batches) is undone."""
    assert payload.decode_body(gzip.compress(b'{"a":1}'), "gzip", 100) == b'{"a":1}'


def test_gzip_bomb_stops_at_the_limit() -> None:
    """A small body that inflates past the limit is refused without inflating it all."""
    bomb = gzip.compress(b"\0" * 50_000_000)
    error = refused(payload.decode_body, bomb, "gzip", 512_000)
    assert (error.status, error.code) == (413, "request_too_large")


def test_truncated_gzip_is_a_bad_request() -> None:
    """A gzip stream cut short is refused, not read as whatever came through."""
    error = refused(payload.decode_body, gzip.compress(b'{"a":1}' * 100)[:30], "gzip", 10_000)
    assert (error.status, error.code) == (400, "invalid_encoding")


def test_garbage_gzip_is_a_bad_request() -> None:
    """Bytes that are not gzip under a gzip header get 400."""
    assert refused(payload.decode_body, b"not gzip", "gzip", 100).status == 400


def test_deflate_is_accepted_and_other_encodings_refused() -> None:
    """deflate is inflated too; br and others get 415."""
    assert payload.decode_body(zlib.compress(b"{}"), "deflate", 100) == b"{}"
    assert refused(payload.decode_body, b"x", "br", 100).status == 415


def test_body_must_be_json() -> None:
    """Invalid JSON and an empty body are 400 invalid_json."""
    assert refused(payload.parse_body, b"{nope").code == "invalid_json"
    assert refused(payload.parse_body, b"  ").code == "invalid_json"


def test_single_call_takes_its_type_from_the_path() -> None:
    """``/v1/t`` is a track call whatever the body says, and the write key is not kept."""
    [event] = payload.split("t", {"type": "page", "event": "X", "writeKey": "k" * 8})
    assert event == {"type": "track", "event": "X"}


def test_batch_merges_context_and_integrations_into_items() -> None:
    """The batch's context and integrations apply to every item; the item's own keys win."""
    body = {
        "writeKey": "secret-key",
        "sentAt": "2026-12-02T12:00:00Z",
        "context": {"library": {"name": "lib", "version": "1"}, "locale": "en"},
        "integrations": {"All": True},
        "batch": [
            {"type": "track", "event": "A", "context": {"library": {"version": "2"}}},
            {"type": "page", "integrations": {"All": False}, "writeKey": "secret-key"},
        ],
    }
    first, second = payload.split("batch", body)
    assert first["context"] == {"library": {"name": "lib", "version": "2"}, "locale": "en"}
    assert first["integrations"] == {"All": True}
    assert second["integrations"] == {"All": False}
    assert "writeKey" not in second
    assert first["sentAt"] == second["sentAt"] == "2026-12-02T12:00:00Z"


def test_batch_needs_items() -> None:
    """A batch without a list, or with an empty one, is refused."""
    assert refused(payload.split, "batch", {"batch": {}}).code == "invalid_body"
    assert refused(payload.split, "batch", {"batch": []}).code == "empty_batch"
    assert refused(payload.split, "batch", [1]).code == "invalid_body"


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ({"type": "track", "userId": "u"}, "event name"),
        ({"type": "shout", "userId": "u"}, "type must be one of"),
        ({"type": "page"}, "userId or anonymousId"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ("text", "JSON object"),
        ([], "[method"),
        ({"method": 5}, "method"),
    ],
)
def test_bad_event_is_named_by_its_index(event: object, words: str) -> None:
    """A bad item refuses the request, naming its 0-based index and the rule."""
    error = refused(payload.check, 3, event)
    assert error.status == 400 and error.message.startswith("event 3")
    assert words in error.message


def test_customerlabs_items_pass() -> None:
    """CustomerLabs envelopes and the snippet's list form are accepted as they are."""
    payload.check(0, {"method": "trackClick", "event_name": "Added to cart"})
    payload.check(0, ["trackClick", "Added to cart", {}])


def test_stamp_corrects_clock_skew() -> None:
    """A sender whose clock is an hour fast has its timestamp moved back an hour."""
    event = {
        "type": "track",
        "timestamp": "2026-12-02T12:59:50Z",
        "sentAt": "2026-12-02T13:00:00Z",
    }
    out = payload.stamp(event, NOW)
    assert out["timestamp"] == "2026-12-02T11:59:50.000Z"
    assert out["originalTimestamp"] == "2026-12-02T12:59:50Z"
    assert out["receivedAt"] == "2026-12-02T12:00:00.000Z"


def test_stamp_without_timestamp_uses_arrival() -> None:
    """No timestamp at all: the arrival time is the event's time."""
    assert payload.stamp({"type": "page"}, NOW)["timestamp"] == "2026-12-02T12:00:00.000Z"


def test_stamp_keeps_timestamp_without_sent_at() -> None:
    """Without sentAt nothing can be corrected: the sender's timestamp stays."""
    out = payload.stamp({"type": "page", "timestamp": "2026-01-01T00:00:00Z"}, NOW)
    assert out["timestamp"] == "2026-01-01T00:00:00Z"


def test_unreadable_times_are_left_for_the_relay() -> None:
    """A timestamp that cannot be read is stored as sent; the relay dead-letters it."""
    out = payload.stamp({"type": "page", "timestamp": "soon", "sentAt": "now"}, NOW)
    assert out["timestamp"] == "soon"


def test_message_id_is_assigned_from_content() -> None:
    """A missing messageId is the same for a retry of the same call (sentAt aside)."""
    a = payload.stamp({"type": "page", "anonymousId": "x", "sentAt": "2026-12-02T11:00:00Z"}, NOW)
    b = payload.stamp({"type": "page", "anonymousId": "x", "sentAt": "2026-12-02T11:00:09Z"}, NOW)
    c = payload.stamp({"type": "page", "anonymousId": "y"}, NOW)
    assert a["messageId"] == b["messageId"] != c["messageId"]
    assert a["messageId"].startswith("relay-")


def test_existing_message_ids_are_kept() -> None:
    """Segment's messageId and CustomerLabs' message_id are never replaced."""
    assert payload.stamp({"type": "page", "messageId": "m-1"}, NOW)["messageId"] == "m-1"
    out = payload.stamp({"method": "pageview", "message_id": "m-2"}, NOW)
    assert out["message_id"] == "m-2" and "messageId" not in out


def test_ip_is_added_only_when_asked() -> None:
    """The client's address is stored only with CIO_COLLECT_IP (the caller passes it)."""
    assert "context" not in payload.stamp({"type": "page"}, NOW)
    assert payload.stamp({"type": "page"}, NOW, ip="10.0.0.1")["context"] == {"ip": "10.0.0.1"}


def test_event_over_the_limit_is_413_with_its_index() -> None:
    """An event larger than CIO_MAX_EVENT_BYTES refuses the request."""
    error = refused(payload.encode, 2, {"type": "page", "x": "a" * 500}, 256)
    assert (error.status, error.code) == (413, "event_too_large")
    assert error.message.startswith("event 2 is")


def test_entries_are_compact_json() -> None:
    """Every event of a request comes out as one stored JSON object, stamped."""
    [data] = payload.entries(
        "track",
        {"userId": "u", "event": "A", "writeKey": "secret-key"},
        received=NOW,
        max_event_bytes=32_768,
    )
    stored = orjson.loads(data)
    assert stored["type"] == "track" and stored["receivedAt"].startswith("2026-12-02")
    assert b"secret-key" not in data


def test_parse_time_reads_iso_and_unix() -> None:
    """ISO text, Unix seconds and milliseconds; anything else is None."""
    assert payload.parse_time("2026-12-02T12:00:00Z") == NOW
    assert payload.parse_time(NOW.timestamp()) == NOW
    assert payload.parse_time(NOW.timestamp() * 1000) == NOW
    assert payload.parse_time(True) is None and payload.parse_time("x") is None
    assert payload.parse_time(float("inf")) is None


def test_gzip_members_are_all_read_and_trailing_junk_refused() -> None:
    """Two gzip members are one body (as gunzip reads them); bytes after the last are 400."""
    two = gzip.compress(b'{"a":') + gzip.compress(b"1}")
    assert payload.decode_body(two, "gzip", 100) == b'{"a":1}'
    error = refused(payload.decode_body, gzip.compress(b"{}") + b"junk", "gzip", 100)
    assert (error.status, error.code) == (400, "invalid_encoding")
