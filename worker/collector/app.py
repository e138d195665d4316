"""The collector's ASGI app: the Segment HTTP Tracking API in front of the inbox.

Routes are thin: read the body within its limit, find the source by its write key, hand
the body to ``payload`` (pure) and the entries to the ``InboxWriter``; answer 200 only
once Redis has them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from worker import redisconn
from worker.collector import payload
from worker.collector.cors import Cors
from worker.collector.payload import Refused
from worker.collector.rawhttp import (
    Receive,
    Scope,
    Send,
    answer,
    headers_of,
    query_value,
    read_body,
)
from worker.collector.sources import Source, Sources, load_sources
from worker.collector.tracker import TrackerFile
from worker.collector.writer import InboxWriter, StoreFailed
from worker.keys import Keys
from worker.settings import Settings, get_settings
from worker.workflow import store as workflow_store
from worker.workflow.client_config import client_config

log = structlog.get_logger("cio_relay.collector")

OK = b'{"success":true}'
FAILED = b'{"success":false,"code":"internal","message":"the collector failed; retry later"}'
JSON = "application/json"
BACKLOG_RETRY_AFTER_S = 10
STORE_RETRY_AFTER_S = 5
BACKLOG_FRESH_S = 1.0
CONFIG_FRESH_S = 5.0
CONFIG_MAX_AGE_S = 60


class Collector:
    """What every request needs: settings, sources, CORS, the writer and the workflow."""

    def __init__(self, settings: Settings, sources: Sources, client: aioredis.Redis) -> None:
        self.settings = settings
        self.sources = sources
        self.cors = Cors(sources)
        self.keys = Keys(settings.redis_prefix)
        self.redis = client
        self.writer = InboxWriter(
            client, self.keys.inbox, redisconn.Durability.from_settings(settings)
        )
        self.tracker = TrackerFile.load()
        self._config: tuple[float, bytes] | None = None

    async def ingest(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One Segment call or batch: every event stored, or none and the reason."""
        headers = headers_of(scope)
        origin = headers.get("origin")
        try:
            body = payload.parse_body(await self._body(receive, headers))
            source = self._authenticate(scope, headers, body)
            self._check_origin(source, origin)
            await self._check_backlog()
            kind = scope["path_params"].get("kind", "batch")
            if kind not in payload.PATH_TYPES and kind not in payload.BATCH_PATHS:
                raise Refused(404, "not_found", f"unknown call /v1/{kind[:20]}")
            events = payload.entries(
                kind,
                body,
                received=datetime.now(UTC),
                max_event_bytes=self.settings.max_event_bytes,
                ip=_client_ip(scope) if self.settings.collect_ip else None,
            )
            fields = [
                {"event": data, "source": source.name, "source_kind": source.kind}
                for data in events
            ]
            try:
                await self.writer.add(fields)
            except StoreFailed as exc:
                log.warning("collect_store_failed", reason=str(exc), events=len(fields))
                raise Refused(503, "unavailable", f"{exc}; retry later") from None
        except Refused as refused:
            await self._refusal(send, refused, origin)
            return
        except Exception as exc:  # never let a traceback carry event content into a log
            log.error("collect_failed", error=type(exc).__name__)
            await answer(send, 500, FAILED, self.cors.headers(origin))
            return
        await answer(send, 200, OK, self.cors.headers(origin))

    async def discard(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/v1/m``: analytics.js' own metrics, read (bounded) and thrown away."""
        headers = headers_of(scope)
        origin = headers.get("origin")
        try:
            await self._body(receive, headers)
        except Refused as refused:
            await self._refusal(send, refused, origin)
            return
        await answer(send, 200, OK, self.cors.headers(origin))

    async def preflight(self, request: Request) -> Response:
        """CORS preflight: allowed origins learn what they may send; others get nothing."""
        origin = request.headers.get("origin")
        asked = request.headers.get("access-control-request-headers")
        return Response(None, 204, self.cors.preflight_headers(origin, asked))

    async def client_config(self, request: Request) -> Response:
        """``/v1/config``: the live workflow's browser part for a client source's tracker."""
        origin = request.headers.get("origin")
        source = self.sources.by_key(request.query_params.get("writeKey"))
        if source is None or source.kind != "client":
            refused = Refused(401, "unauthorized", "writeKey must be a client source's key")
            return Response(*self._refusal_parts(refused, origin), JSON)
        try:
            body = await self._workflow_config()
        except (aioredis.RedisError, OSError):
            refused = Refused(503, "unavailable", "Redis is unreachable")
            return Response(*self._refusal_parts(refused, origin), JSON)
        headers = {
            **self.cors.headers(origin, source),
            "Cache-Control": f"public, max-age={CONFIG_MAX_AGE_S}",
        }
        return Response(body, 200, headers, JSON)

    async def tracker_js(self, request: Request) -> Response:
        """``/tracker.js``, with an ETag and a cache lifetime."""
        return self.tracker.response(request.headers.get("if-none-match"))

    async def health(self, request: Request) -> Response:
        """200 while Redis answers (for load balancers), else 503."""
        try:
            await self.redis.ping()
        except (aioredis.RedisError, OSError):
            return Response(b'{"ok":false,"redis":"unreachable"}', 503, None, JSON)
        return Response(b'{"ok":true}', 200, None, JSON)

    async def _body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        limit = self.settings.collect_max_request_bytes
        raw = await read_body(receive, headers, limit)
        return payload.decode_body(raw, headers.get("content-encoding"), limit)

    def _authenticate(self, scope: Scope, headers: dict[str, str], body: Any) -> Source:
        key = (
            _basic_user(headers.get("authorization"))
            or payload.body_write_key(body)
            or query_value(scope, "writeKey")
        )
        source = self.sources.by_key(key)
        if source is None:
            raise Refused(
                401,
                "unauthorized",
                "missing write key" if not key else "unknown write key",
            )
        return source

    def _check_origin(self, source: Source, origin: str | None) -> None:
        if origin is None:
            return
        if source.kind == "server":
            raise Refused(
                403, "origin_not_allowed", "a server source's key may not be used from a browser"
            )
        if not source.allows_origin(origin):
            raise Refused(403, "origin_not_allowed", "this origin is not allowed for the source")

    async def _check_backlog(self) -> None:
        limit = self.settings.collect_max_lag
        writer = self.writer
        stale = time.monotonic() - writer.backlog_read_at > BACKLOG_FRESH_S
        if writer.backlog <= limit and not stale:
            return
        if stale:
            writer.backlog_read_at = time.monotonic()  # one re-read at a time, not a stampede
            try:
                if await writer.read_backlog() <= limit:
                    return
            except (aioredis.RedisError, OSError):
                # The write that follows says precisely what is wrong (unreachable, OOM,
                # MISCONF...) and stores nothing if Redis refuses it.
                return
        raise Refused(
            429,
            "backlog",
            f"the relay has over {limit} events waiting (CIO_COLLECT_MAX_LAG); retry later",
        )

    async def _workflow_config(self) -> bytes:
        now = time.monotonic()
        if self._config is not None and now - self._config[0] < CONFIG_FRESH_S:
            return self._config[1]
        raw = await self.redis.hget(self.keys.workflow, workflow_store.FIELD_WORKFLOW)
        workflow = workflow_store.EMPTY if raw is None else workflow_store.decode(raw)
        body = orjson.dumps(client_config(workflow))
        self._config = (now, body)
        return body

    async def _refusal(self, send: Send, refused: Refused, origin: str | None) -> None:
        body, status, headers = self._refusal_parts(refused, origin)
        await answer(send, status, body, headers)

    def _refusal_parts(
        self, refused: Refused, origin: str | None
    ) -> tuple[bytes, int, dict[str, str]]:
        """The body, status and headers of a refusal, logged without any event content."""
        if refused.status >= 500:
            log.warning("collect_refused", status=refused.status, code=refused.code)
        else:
            log.info("collect_refused", status=refused.status, code=refused.code)
        headers = dict(self.cors.headers(origin))
        if refused.status == 429:
            headers["Retry-After"] = str(BACKLOG_RETRY_AFTER_S)
        elif refused.status == 503:
            headers["Retry-After"] = str(STORE_RETRY_AFTER_S)
        body = orjson.dumps({"success": False, "code": refused.code, "message": refused.message})
        return body, refused.status, headers


def _basic_user(header: str | None) -> str | None:
    """The username of a Basic ``Authorization`` header: SDKs send the write key there."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def create_app(
    settings: Settings | None = None,
    *,
    client: aioredis.Redis | None = None,
    sources: Sources | None = None,
) -> Router:
    """The ASGI app; uvicorn calls this in every server process (``factory=True``)."""
    settings = settings or get_settings()
    sources = sources if sources is not None else load_sources(settings.sources_file)
    client = client or redisconn.connect_async(settings)
    collector = Collector(settings, sources, client)

    @contextlib.asynccontextmanager
    async def lifespan(app: Router) -> AsyncIterator[None]:
        collector.writer.start()
        log.info("collector_started", sources=len(sources))
        yield
        await collector.writer.stop()
        await client.aclose()

    post, options = ["POST"], ["OPTIONS"]
    ingest, discard = AsgiEndpoint(collector.ingest), AsgiEndpoint(collector.discard)
    routes = [
        Route("/v1/m", discard, methods=post),
        Route("/v1/config", collector.client_config, methods=["GET"]),
        Route("/v1/{kind}", ingest, methods=post),
        Route("/beacon/v1/batch", ingest, methods=post),
        Route("/tracker.js", collector.tracker_js, methods=["GET", "HEAD"]),
        Route("/health", collector.health, methods=["GET"]),
        Route("/{path:path}", collector.preflight, methods=options),
    ]
    # A bare Router: Starlette's error middleware wraps every request in two more layers,
    # and an unexpected exception here is uvicorn's to answer with a 500 anyway.
    return Router(routes=routes, lifespan=lifespan)


class AsgiEndpoint:
    """Marks a bound method as a raw ASGI endpoint for Starlette's routing (which would
    otherwise wrap a method in its Request/Response cycle)."""

    def __init__(self, handler: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send)
