"""Prometheus metrics read from the shared Redis state on every scrape.

The counters live in Redis (``<prefix>:counters``), written by every replica, so one
scrape of any ``cio-relay metrics`` process shows the whole relay. ``families`` is the pure
mapping from what ``cio-relay stats`` collects to metric families; ``RelayCollector`` is
the I/O edge that reads Redis when Prometheus asks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import redis
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from worker.keys import Keys
from worker.redisconn import write_refusal
from worker.stats import collect

log = structlog.get_logger("cio_relay.metrics")

PREFIX = "cio_relay_"
NO_REASON = "none"

Metric = CounterMetricFamily | GaugeMetricFamily


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, doc, value=value)


def _by_reason(name: str, doc: str, counts: Mapping[str, int], status: str) -> Metric:
    """One labelled counter per reason; outcomes counted without a reason get ``none``."""
    family = CounterMetricFamily(PREFIX + name, doc, labels=["reason"])
    reasons = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith(status + ":")}
    for reason, n in sorted(reasons.items()):
        family.add_metric([reason], n)
    rest = counts.get(status, 0) - sum(reasons.values())
    if rest > 0 or not reasons:
        family.add_metric([NO_REASON], max(rest, 0))
    return family


def families(stats: Mapping[str, Any]) -> list[Metric]:
    """The metric families for one ``stats`` snapshot (``worker.stats.collect``)."""
    counts: Mapping[str, int] = stats["counts"]
    inbox: Mapping[str, int] = stats["inbox"]
    ages: Mapping[str, float] = stats["ages"]
    rate: Mapping[str, float] = stats["rate"]

    http = CounterMetricFamily(
        PREFIX + "http_responses",
        "Track API responses by HTTP status (or timeout / connection error)",
        labels=["status"],
    )
    for field, n in sorted(counts.items()):
        if field.startswith("http:"):
            http.add_metric([field.split(":", 1)[1]], n)

    paused = GaugeMetricFamily(
        PREFIX + "paused",
        "1 while delivery is paused after a 401, 403 or 3xx (reason label), else 0",
        labels=["reason"],
    )
    paused.add_metric([stats["paused"] or ""], 1 if stats["paused"] else 0)

    return [
        _counter("delivered", "Events Customer.io accepted", counts.get("delivered", 0)),
        _by_reason("skipped", "Events deliberately not sent, by reason", counts, "skipped"),
        _by_reason("dead", "Events dead-lettered, by reason", counts, "dead"),
        _counter(
            "retries",
            "Delivery attempts that failed and were scheduled again",
            counts.get("retry", 0),
        ),
        _counter(
            "paused_events",
            "Events set aside because delivery was paused (kept, sent after resume)",
            counts.get("paused", 0),
        ),
        _counter("batches", "Inbox batches processed", counts.get("batches", 0)),
        _counter(
            "batch_entries", "Inbox entries in processed batches", counts.get("batch_entries", 0)
        ),
        _counter("http_requests", "Requests sent to the Track API", counts.get("requests", 0)),
        http,
        _gauge("inbox_length", "Entries in the inbox stream", inbox["length"]),
        _gauge("inbox_unread", "Inbox entries no worker has read yet (lag)", inbox["unread"]),
        _gauge(
            "inbox_pending",
            "Inbox entries read but not finished (in flight or retry)",
            inbox["pending"],
        ),
        _gauge(
            "inbox_waiting_retry",
            "Inbox entries waiting for their next attempt",
            inbox["waiting_retry"],
        ),
        _gauge(
            "inbox_oldest_unread_age_seconds",
            "Seconds since the oldest unread inbox entry arrived (0 when none)",
            ages["oldest_unread_s"],
        ),
        _gauge(
            "inbox_oldest_pending_age_seconds",
            "Seconds since the oldest pending inbox entry arrived (0 when none)",
            ages["oldest_pending_s"],
        ),
        _gauge("dlq_size", "Entries in the dead-letter queue", stats["dlq"]),
        paused,
        _gauge(
            "throttled_seconds",
            "Seconds left in the shared pause after a 429",
            stats["throttled_for_s"],
        ),
        _gauge(
            "send_rate_events_per_second",
            "Events sent per second over the last 10 s",
            rate["events_per_s"],
        ),
        _gauge(
            "send_rate_requests_per_second",
            "Track API requests per second over the last 10 s",
            rate["requests_per_s"],
        ),
    ]


class RelayCollector:
    """Reads the relay's shared state from Redis on every scrape."""

    def __init__(
        self, client: redis.Redis, keys: Keys, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._keys = keys
        self._clock = clock

    def describe(self) -> list[Metric]:
        # Registering must not touch Redis; the names are fixed, so none are declared.
        return []

    def collect(self) -> Iterator[Metric]:
        try:
            stats = collect(self._redis, self._keys, self._clock())
            refused = write_refusal(self._redis, self._keys.prefix + ":write_probe")
        except redis.RedisError as exc:
            log.warning("metrics_redis_error", error=type(exc).__name__)
            yield _gauge("redis_up", "1 when the last scrape could read Redis", 0)
            return
        yield _gauge("redis_up", "1 when the last scrape could read Redis", 1)
        yield writes_refused(refused)
        yield from families(stats)


def writes_refused(cause: str | None) -> GaugeMetricFamily:
    """1 with the cause Redis named (OOM, MISCONF…) while it refuses writes, else 0."""
    family = GaugeMetricFamily(
        PREFIX + "redis_writes_refused",
        "1 while Redis refuses writes, cause label as Redis names it (OOM: maxmemory reached "
        "with noeviction; MISCONF: a failed RDB save or AOF write), else 0",
        labels=["cause"],
    )
    family.add_metric([cause or ""], 1 if cause else 0)
    return family


def registry(
    client: redis.Redis, keys: Keys, *, clock: Callable[[], float] = time.time
) -> CollectorRegistry:
    """A registry holding only the relay's collector (no exporter-process metrics)."""
    reg = CollectorRegistry()
    reg.register(RelayCollector(client, keys, clock=clock))
    return reg
