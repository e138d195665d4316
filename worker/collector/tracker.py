"""The browser tracker as served: the built ``static/tracker.js``, its ETag and cache time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import Response

TRACKER_PATH = Path(__file__).resolve().parent / "static" / "tracker.js"
# Pages embed the tag once and keep it for years; an hour of caching lets a new tracker
# reach every visitor within the hour, and revalidation by ETag costs a 304.
MAX_AGE_S = 3600


@dataclass(frozen=True, slots=True)
class TrackerFile:
    """The tracker's bytes and the strong ETag made from them."""

    body: bytes
    etag: str

    @classmethod
    def load(cls, path: Path = TRACKER_PATH) -> TrackerFile:
        body = path.read_bytes() if path.exists() else b"/* tracker.js is not built */\n"
        return cls(body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')

    def response(self, if_none_match: str | None) -> Response:
        """200 with the script, or 304 when the browser's copy is current."""
        headers = {
            "Cache-Control": f"public, max-age={MAX_AGE_S}",
            "ETag": self.etag,
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
        }
        if if_none_match and self.etag in {t.strip() for t in if_none_match.split(",")}:
            return Response(None, 304, headers)
        return Response(self.body, 200, headers, "application/javascript; charset=utf-8")
