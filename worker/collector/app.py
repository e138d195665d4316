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
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from worker.collector import payload
from worker.collector.cors import Cors
from worker.collector.payload import Refused
from worker.collector.sources import Source, Sources, load_sources
from worker.collector.tracker import TrackerFile
from worker.collector.writer import InboxWriter, StoreFailed
from worker.keys import Keys
from worker.settings import Settings, get_settings
from worker.workflow import store as workflow_store

log = structlog.get_logger("cio_relay.collector")

OK = b'{"success":true}'
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
        self.writer = InboxWriter(client, self.keys.inbox)
        self.tracker = TrackerFile.load()
        self._config: tuple[float, bytes] | None = None

    async def ingest(self, request: Request) -> Response:
        """One Segment call or batch: every event stored, or none and the reason."""
        origin = request.headers.get("origin")
        try:
            body = payload.parse_body(await self._body(request))
            source = self._authenticate(request, body)
            self._check_origin(source, origin)
            await self._check_backlog()
            kind = request.path_params.get("kind", "batch")
            if kind not in payload.PATH_TYPES and kind not in payload.BATCH_PATHS:
                raise Refused(404, "not_found", f"unknown call /v1/{kind[:20]}")
            events = payload.entries(
                kind,
                body,
                received=datetime.now(UTC),
                max_event_bytes=self.settings.max_event_bytes,
                ip=_client_ip(request) if self.settings.collect_ip else None,
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
            return self._refusal(refused, origin)
        return Response(OK, 200, self.cors.headers(origin), JSON)

    async def discard(self, request: Request) -> Response:
        """``/v1/m``: analytics.js' own metrics, read (bounded) and thrown away."""
        origin = request.headers.get("origin")
        try:
            await self._body(request)
        except Refused as refused:
            return self._refusal(refused, origin)
        return Response(OK, 200, self.cors.headers(origin), JSON)

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
            return self._refusal(
                Refused(401, "unauthorized", "writeKey must be a client source's key"), origin
            )
        try:
            body = await self._workflow_config()
        except (aioredis.RedisError, OSError):
            return self._refusal(Refused(503, "unavailable", "Redis is unreachable"), origin)
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

    async def _body(self, request: Request) -> bytes:
        """The body, refused unread when declared too large and cut off when it grows so."""
        limit = self.settings.collect_max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise Refused(413, "request_too_large", f"the request is over {limit} bytes")
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refused(413, "request_too_large", f"the request is over {limit} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        return payload.decode_body(raw, request.headers.get("content-encoding"), limit)

    def _authenticate(self, request: Request, body: Any) -> Source:
        key = (
            _basic_user(request.headers.get("authorization"))
            or payload.body_write_key(body)
            or request.query_params.get("writeKey")
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
        if writer.backlog <= limit:
            return
        if time.monotonic() - writer.backlog_read_at > BACKLOG_FRESH_S:
            try:
                if await writer.read_backlog() <= limit:
                    return
            except (aioredis.RedisError, OSError):
                raise Refused(503, "unavailable", "Redis is unreachable; retry later") from None
        raise Refused(
            429,
            "backlog",
            f"the relay has over {limit} events waiting (CIO_COLLECT_MAX_LAG); retry later",
        )

    async def _workflow_config(self) -> bytes:
        from worker.workflow.client_config import client_config

        now = time.monotonic()
        if self._config is not None and now - self._config[0] < CONFIG_FRESH_S:
            return self._config[1]
        raw = await self.redis.hget(self.keys.workflow, workflow_store.FIELD_WORKFLOW)
        workflow = workflow_store.EMPTY if raw is None else workflow_store.decode(raw)
        body = orjson.dumps(client_config(workflow))
        self._config = (now, body)
        return body

    def _refusal(self, refused: Refused, origin: str | None) -> Response:
        if refused.status >= 500:
            log.warning("collect_refused", status=refused.status, code=refused.code)
        else:
            # No event content here: the message names an index and a rule, never values.
            log.info("collect_refused", status=refused.status, code=refused.code)
        headers = dict(self.cors.headers(origin))
        if refused.status == 429:
            headers["Retry-After"] = str(BACKLOG_RETRY_AFTER_S)
        elif refused.status == 503:
            headers["Retry-After"] = str(STORE_RETRY_AFTER_S)
        body = orjson.dumps({"success": False, "code": refused.code, "message": refused.message})
        return Response(body, refused.status, headers, JSON)


def _basic_user(header: str | None) -> str | None:
    """The username of a Basic ``Authorization`` header: SDKs send the write key there."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def create_app(
    settings: Settings | None = None,
    *,
    client: aioredis.Redis | None = None,
    sources: Sources | None = None,
) -> Starlette:
    """The ASGI app; uvicorn calls this in every server process (``factory=True``)."""
    settings = settings or get_settings()
    sources = sources if sources is not None else load_sources(settings.sources_file)
    client = client or aioredis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=15
    )
    collector = Collector(settings, sources, client)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        collector.writer.start()
        log.info("collector_started", sources=len(sources))
        yield
        await collector.writer.stop()
        await client.aclose()

    post, options = ["POST"], ["OPTIONS"]
    routes = [
        Route("/v1/m", collector.discard, methods=post),
        Route("/v1/config", collector.client_config, methods=["GET"]),
        Route("/v1/{kind}", collector.ingest, methods=post),
        Route("/beacon/v1/batch", collector.ingest, methods=post),
        Route("/tracker.js", collector.tracker_js, methods=["GET", "HEAD"]),
        Route("/health", collector.health, methods=["GET"]),
        Route("/{path:path}", collector.preflight, methods=options),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.collector = collector
    return app
