"""The Overview page: received -> skipped (by reason) -> delivered -> dead for a chosen
window, events/s and requests/s, 429s, pause state and inbox lag; Pause and Resume.

Where the numbers come from: the shared counters (``worker.counters``) are totals since
the start with no time dimension, so a window is counted from the activity stream (each
entry carries its time; the stream keeps the last ``CIO_ACTIVITY_MAX`` outcomes, and the
page says when a window reaches past its oldest entry). Events/s and requests/s come from
the per-second ``rate:<second>`` hashes the drains write (kept about 30 s).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from worker import audit, pausing, stats
from worker.console.auth import check_csrf, require
from worker.console.templating import render
from worker.keys import Keys
from worker.redisconn import as_text, stream_rows

WINDOWS = {"5m": 300, "15m": 900, "1h": 3600, "24h": 86_400}
DEFAULT_WINDOW = "15m"
RATE_SECONDS = 30  # the rate hashes expire after about this long
BUCKETS = 30


@dataclass(slots=True)
class Funnel:
    """Outcomes counted over a window of the activity stream."""

    delivered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    retries_429: int = 0
    oldest_at: float | None = None  # time of the oldest activity entry kept at all
    covers_window: bool = True
    series: dict[str, list[int]] = field(default_factory=dict)
    bucket_s: int = 10

    @property
    def received(self) -> int:
        """Events whose outcome is final in the window (delivered, skipped or dead)."""
        return self.delivered + sum(self.skipped.values()) + sum(self.dead.values())


# Count the activity entries from ARGV[1] (ms) on inside Redis, by outcome, reason,
# HTTP status and time bucket (ARGV[2] ms wide, ARGV[3] of them): one round trip and no
# 10,000 rows to decode in Python. Returns a flat [key, count, ...] list.
_COUNT = """
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], '+')
local start, width, last = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) - 1
local counts = {}
for _, row in ipairs(rows) do
  local f = row[2]
  local outcome, reason, http = '', '', ''
  for i = 1, #f, 2 do
    local k = f[i]
    if k == 'outcome' then outcome = f[i + 1]
    elseif k == 'reason' then reason = f[i + 1]
    elseif k == 'http_status' then http = f[i + 1] end
  end
  local ms = tonumber(string.match(row[1], '^(%d+)'))
  local b = math.max(0, math.min(last, math.floor((ms - start) / width)))
  local key = outcome .. '|' .. http .. '|' .. b .. '|' .. reason
  counts[key] = (counts[key] or 0) + 1
end
local out = {}
for k, n in pairs(counts) do
  out[#out + 1] = k
  out[#out + 1] = n
end
return out
"""


def funnel(client: redis.Redis, keys: Keys, now: float, window_s: int) -> Funnel:
    """Count the activity entries written in the last ``window_s`` seconds by outcome and
    reason, with per-bucket series (delivered, skipped, dead, 429 retries) for a chart."""
    start_ms = int((now - window_s) * 1000)
    result = Funnel(bucket_s=max(1, window_s // BUCKETS))
    series = {k: [0] * BUCKETS for k in ("delivered", "skipped", "dead", "429")}
    oldest = stream_rows(client.xrange(keys.activity, "-", "+", count=1))
    if oldest:
        result.oldest_at = int(oldest[0][0].split("-", 1)[0]) / 1000
        result.covers_window = result.oldest_at <= now - window_s or _capped_at_start(client, keys)
    flat: Any = client.eval(_COUNT, 1, keys.activity, start_ms, result.bucket_s * 1000, BUCKETS)
    for key, n in zip(flat[::2], flat[1::2], strict=True):
        outcome, http, bucket, reason = as_text(key).split("|", 3)
        reason = reason or "unknown"
        count = int(n)
        if outcome == "delivered":
            result.delivered += count
        elif outcome == "skipped":
            result.skipped[reason] += count
        elif outcome == "dead":
            result.dead[reason] += count
        elif outcome == "retry" and http == "429":
            result.retries_429 += count
            series["429"][int(bucket)] += count
            continue
        else:
            continue
        series[outcome][int(bucket)] += count
    result.series = series
    return result


def _capped_at_start(client: redis.Redis, keys: Keys) -> bool:
    """Whether the stream never dropped an entry (it holds every outcome ever written)."""
    info = client.xinfo_stream(keys.activity)
    added = int(info.get("entries-added", 0) or 0)
    return added > 0 and added == int(info.get("length", 0))


def rates(client: redis.Redis, keys: Keys, now: float) -> dict[str, list[float]]:
    """Requests and events sent in each of the last ``RATE_SECONDS`` whole seconds."""
    seconds = list(range(int(now) - RATE_SECONDS, int(now)))
    pipe = client.pipeline(transaction=False)
    for s in seconds:
        pipe.hmget(keys.rate(s), "requests", "events")
    replies = pipe.execute()
    return {
        "t": [float(s) for s in seconds],
        "requests": [float(r[0] or 0) for r in replies],
        "events": [float(r[1] or 0) for r in replies],
    }


def snapshot(client: redis.Redis, keys: Keys, window: str, now: float) -> dict[str, Any]:
    """Everything the page and its live data endpoint show."""
    window_s = WINDOWS.get(window, WINDOWS[DEFAULT_WINDOW])
    state = stats.collect(client, keys, now)
    counts = funnel(client, keys, now, window_s)
    return {"state": state, "funnel": counts, "rates": rates(client, keys, now), "now": now}


# -- routes ----------------------------------------------------------------------------


def _window(request: Request) -> str:
    window = request.query_params.get("window", DEFAULT_WINDOW)
    return window if window in WINDOWS else DEFAULT_WINDOW


def overview_page(request: Request) -> Response:
    user = require(request)
    window = _window(request)
    data = snapshot(request.app.state.redis, request.app.state.keys, window, time.time())
    return render(
        request,
        "overview.html",
        window=window,
        windows=list(WINDOWS),
        editor=user.may("editor"),
        **data,
    )


def overview_data(request: Request) -> Response:
    """The charts' series as JSON, polled every 2 s by console.js."""
    require(request)
    data = snapshot(request.app.state.redis, request.app.state.keys, _window(request), time.time())
    counts: Funnel = data["funnel"]
    state = data["state"]
    return JSONResponse(
        {
            "rates": data["rates"],
            "series": counts.series,
            "bucket_s": counts.bucket_s,
            "start": data["now"] - WINDOWS[_window(request)],
            "paused": state["paused"],
            "inbox": state["inbox"],
            "ages": state["ages"],
        }
    )


async def pause_or_resume(request: Request) -> Response:
    user = require(request, "editor")
    await check_csrf(request)
    client, keys = request.app.state.redis, request.app.state.keys
    detail: dict[str, object]
    if request.url.path.endswith("/pause"):
        changed = await run_in_threadpool(
            pausing.pause_by_hand, client, keys, f"console:{user.name}"
        )
        action, detail = "pause", {"paused": changed}
    else:
        was = await run_in_threadpool(pausing.resume, client, keys)
        action, detail = "resume", {"was_paused_for": was}
    audit.record(client, keys, user.name, action, detail)
    return RedirectResponse("/overview", status_code=303)


routes: list[BaseRoute] = [
    Route("/overview", overview_page, name="overview"),
    Route("/overview/data", overview_data, name="overview_data"),
    Route("/overview/pause", pause_or_resume, methods=["POST"], name="pause"),
    Route("/overview/resume", pause_or_resume, methods=["POST"], name="resume"),
]
