"""From an HTTP request body to inbox entries: decode, split, merge, stamp, check. Pure.

The request is refused as a whole (``Refused``) when any part of it is bad, naming the
item's 0-based index, so a sender never has half a batch accepted without knowing.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.errors import InvalidEvent
from worker.normalize import parse_json

SEGMENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")
# analytics.js' short paths, and the long ones.
PATH_TYPES = {
    "i": "identify",
    "t": "track",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
    **{t: t for t in SEGMENT_TYPES},
}
BATCH_PATHS = ("batch", "b")
# Keys that describe the request, not one event; never stored (the write key is a secret
# for server sources).
REQUEST_KEYS = ("writeKey", "sentAt", "batch", "context", "integrations")


class Refused(Exception):
    """Raised when a request must be answered with an error and nothing stored."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def decode_body(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body as sent, gunzipped when so encoded, never inflated past ``max_bytes``."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise Refused(
            415,
            "unsupported_encoding",
            f"Content-Encoding {encoding[:20]!r} is not supported; use gzip",
        )
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    out = bytearray()
    data = raw
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, max_bytes + 1 - len(out))
        except zlib.error:
            raise Refused(400, "invalid_encoding", "the body is not valid gzip") from None
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise Refused(
                413, "request_too_large", f"the request inflates past {max_bytes} bytes (the limit)"
            )
        if not inflater.eof:
            raise Refused(400, "invalid_encoding", "the gzip body is truncated")
        data = inflater.unused_data
        if not data:
            break
        if encoding == "deflate" or data[:2] != b"\x1f\x8b":
            raise Refused(400, "invalid_encoding", "the body has data after its gzip stream")
    return bytes(out)


def parse_body(data: bytes) -> Any:
    """The body as JSON whatever the Content-Type (browsers send ``text/plain``)."""
    if not data.strip():
        raise Refused(400, "invalid_json", "the request body is empty")
    try:
        return parse_json(data)
    except InvalidEvent as exc:
        raise Refused(400, "invalid_json", exc.detail) from None


def body_write_key(body: Any) -> str | None:
    """The ``writeKey`` a body carries (analytics.js and beacons put it there)."""
    if isinstance(body, dict):
        key = body.get("writeKey")
        if isinstance(key, str):
            return key
    return None


def split(kind: str, body: Any) -> list[Any]:
    """The events of one request: the body itself for a single call, the items of a batch
    with the batch's ``context`` and ``integrations`` merged in (the item's own win)."""
    if not isinstance(body, dict):
        raise Refused(400, "invalid_body", "the body must be a JSON object")
    if kind not in BATCH_PATHS:
        event = {k: v for k, v in body.items() if k != "writeKey"}
        event["type"] = PATH_TYPES[kind]
        return [event]
    items = body.get("batch")
    if not isinstance(items, list):
        raise Refused(400, "invalid_body", "a batch body needs a list named batch")
    if not items:
        raise Refused(400, "empty_batch", "the batch has no events")
    shared = {k: body[k] for k in ("context", "integrations") if isinstance(body.get(k), dict)}
    sent_at = body.get("sentAt")
    out = []
    for item in items:
        if isinstance(item, dict):
            item = {k: v for k, v in item.items() if k != "writeKey"}
            for name, value in shared.items():
                own = item.get(name)
                item[name] = merge(value, own) if isinstance(own, dict) or own is None else own
            if sent_at is not None and "sentAt" not in item:
                item["sentAt"] = sent_at
        out.append(item)
    return out


def merge(base: Mapping[str, Any], own: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` overlaid with ``own``, objects merged key by key (``own`` wins)."""
    out = dict(base)
    for key, value in (own or {}).items():
        under = out.get(key)
        out[key] = (
            merge(under, value) if isinstance(under, dict) and isinstance(value, dict) else value
        )
    return out


def check(index: int, event: Any) -> None:
    """Refuse an event the relay could never read, naming its index in the request."""
    where = f"event {index}"
    if isinstance(event, list):
        if not event or not isinstance(event[0], str):
            raise Refused(
                400, "invalid_event", f"{where}: a list must be [method, name?, properties?]"
            )
        return
    if not isinstance(event, dict):
        raise Refused(400, "invalid_event", f"{where} must be a JSON object")
    if "method" in event:
        if not isinstance(event["method"], str) or not event["method"]:
            raise Refused(400, "invalid_event", f"{where}: method must be a non-empty string")
        return
    kind = event.get("type")
    if not isinstance(kind, str) or kind.strip().lower() not in SEGMENT_TYPES:
        raise Refused(
            400, "invalid_event", f"{where}: type must be one of {', '.join(SEGMENT_TYPES)}"
        )
    kind = kind.strip().lower()
    if kind == "track":
        name = event.get("event")
        if not isinstance(name, str) or not name.strip():
            raise Refused(400, "invalid_event", f"{where}: a track call needs an event name")
    if kind == "alias":
        if not _has_id(event, "previousId") or not _has_id(event, "userId"):
            raise Refused(400, "invalid_event", f"{where}: an alias needs userId and previousId")
    elif not (_has_id(event, "userId") or _has_id(event, "anonymousId")):
        raise Refused(400, "invalid_event", f"{where}: userId or anonymousId is required")


def _has_id(event: Mapping[str, Any], name: str) -> bool:
    value = event.get(name)
    return (isinstance(value, str) and bool(value.strip())) or (
        isinstance(value, int) and not isinstance(value, bool)
    )


def stamp(
    event: Any, received: datetime, ip: str | None = None, received_iso: str | None = None
) -> Any:
    """Set ``receivedAt``, correct ``timestamp`` for the sender's clock, give a message id.

    Clock skew as Segment corrects it: ``timestamp = receivedAt - (sentAt - timestamp)``;
    the sender's own time is kept as ``originalTimestamp``. A missing message id is made
    from the event's content (``sentAt`` aside), so an SDK's retry of the same call gets
    the same id and the relay the same ULID.
    """
    if not isinstance(event, dict):
        return event  # the CustomerLabs queue list: the relay hashes its content
    out = dict(event)
    id_key = "message_id" if "method" in out else "messageId"
    if not _has_id(out, id_key):
        out[id_key] = content_id(out)
    sent_at = parse_time(out.get("sentAt"))
    own = parse_time(out.get("timestamp"))
    if own is None and "originalTimestamp" in out:
        own = parse_time(out.get("originalTimestamp"))
    if own is not None and sent_at is not None:
        out.setdefault("originalTimestamp", out.get("timestamp"))
        # Absurd clocks overflow: keep the sender's time for the relay to judge.
        with contextlib.suppress(OverflowError):
            out["timestamp"] = iso(received - (sent_at - own))
    elif out.get("timestamp") is None:
        out["timestamp"] = received_iso or iso(received)
    out["receivedAt"] = received_iso or iso(received)
    if ip:
        context = out.get("context")
        if isinstance(context, dict) and "ip" not in context:
            out["context"] = {**context, "ip": ip}
        elif context is None:
            out["context"] = {"ip": ip}
    return out


def content_id(event: Mapping[str, Any]) -> str:
    """A message id from the event's content, the same for every retry of one call."""
    stable = {k: v for k, v in event.items() if k not in ("sentAt", "receivedAt", "_metadata")}
    digest = hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"relay-{digest[:32]}"


def encode(index: int, event: Any, max_event_bytes: int) -> bytes:
    """One event as the inbox's compact UTF-8 JSON, refused when over the size limit."""
    try:
        data = orjson.dumps(event)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise Refused(400, "invalid_event", f"event {index} cannot be stored: {exc}") from None
    if len(data) > max_event_bytes:
        raise Refused(
            413,
            "event_too_large",
            f"event {index} is {len(data)} bytes; the limit is {max_event_bytes}",
        )
    return data


def entries(
    kind: str, body: Any, *, received: datetime, max_event_bytes: int, ip: str | None = None
) -> list[bytes]:
    """Every event of a request, checked, stamped and encoded; or Refused for the whole."""
    out = []
    arrived = iso(received)  # one formatting per request, not two per event
    for index, event in enumerate(split(kind, body)):
        check(index, event)
        out.append(encode(index, stamp(event, received, ip, arrived), max_event_bytes))
    return out


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 text or Unix (milli)seconds as an aware datetime; None if unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, int | float):
            if not math.isfinite(value):
                return None
            seconds = value / 1000 if value > 10**11 else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str) and value.strip():
            parsed = datetime.fromisoformat(value.strip().upper())
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, as Segment writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
