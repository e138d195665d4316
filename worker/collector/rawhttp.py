"""The few ASGI primitives the ingestion path uses directly: headers, a bounded body, an
answer. Starlette's Request and Response cost a third of a small request's time at
10,000 requests/s, so the hot path speaks ASGI itself; every other route uses Starlette."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from worker.collector.payload import Refused

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def headers_of(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (ASGI servers already lower-case them)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def query_value(scope: Scope, name: str) -> str | None:
    """One query-string parameter, or None."""
    raw = scope.get("query_string") or b""
    if not raw:
        return None
    values = parse_qs(raw.decode("latin-1")).get(name)
    return values[0] if values else None


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The body, refused unread when declared too large and cut off when it grows so."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, "request_too_large", f"the request is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "disconnected", "the client went away mid-request")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise Refused(413, "request_too_large", f"the request is over {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def answer(
    send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    """A complete JSON answer."""
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if headers:
        raw.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
