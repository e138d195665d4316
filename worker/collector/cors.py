"""CORS for client sources: only the origins a source lists may read the collector's answers."""

from __future__ import annotations

from worker.collector.sources import Source, Sources

# What browser SDKs send: analytics.js' Basic auth and its retry counter, RudderStack's
# anonymous-id header, and JSON bodies.
ALLOWED_HEADERS = ("authorization", "content-type", "x-retry-count", "anonymousid")
MAX_AGE_S = 7200  # Chromium's own cap on how long a preflight answer is kept
METHODS = "POST, GET, OPTIONS"


class Cors:
    """Which origins may call, from the union of the client sources' allow-lists.

    A preflight carries no write key, so it is answered for any origin some client source
    allows; the request that follows is checked against its own source's list.
    """

    def __init__(self, sources: Sources) -> None:
        clients = [s for s in sources.sources if s.kind == "client"]
        self._any = any("*" in s.origins for s in clients)
        self._origins = frozenset(o for s in clients for o in s.origins)

    def allows(self, origin: str | None) -> bool:
        """Whether some client source allows ``origin``."""
        return bool(origin) and (self._any or origin.rstrip("/") in self._origins)  # type: ignore[union-attr]

    def headers(self, origin: str | None, source: Source | None = None) -> dict[str, str]:
        """The CORS headers of an answer to ``origin`` (none for an origin not allowed)."""
        if origin is None:
            return {}
        allowed = source.allows_origin(origin) if source is not None else self.allows(origin)
        if not allowed:
            return {"Vary": "Origin"}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def preflight_headers(self, origin: str | None, asked: str | None) -> dict[str, str]:
        """The answer to an ``OPTIONS`` preflight."""
        if origin is None or not self.allows(origin):
            return {"Vary": "Origin"}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": METHODS,
            "Access-Control-Allow-Headers": ", ".join(_headers(asked)),
            "Access-Control-Max-Age": str(MAX_AGE_S),
            "Vary": "Origin",
        }


def _headers(asked: str | None) -> list[str]:
    """The allowed request headers, plus none that were not asked for or are not allowed."""
    wanted = {h.strip().lower() for h in (asked or "").split(",") if h.strip()}
    return [h for h in ALLOWED_HEADERS if h in wanted] or list(ALLOWED_HEADERS)
