"""The Prometheus collector: exact samples from counters seeded the way the drain writes them."""

from __future__ import annotations

import fakeredis
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from worker import counters
from worker.inbox import defer, ensure_group
from worker.keys import CONSUMER_GROUP, Keys
from worker.metrics import registry
from worker.outcomes import Outcome

KEYS = Keys("mt")
NOW = 3010.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: fakeredis.FakeRedis, now: float = NOW) -> Samples:
    """Scrape through the text exposition, as Prometheus would, and index the samples."""
    text = generate_latest(registry(client, KEYS, clock=lambda: now)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def one(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(lbl)[label]: v for (n, lbl), v in samples.items() if n == name}


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def outcome(status: str, reason: str | None = None) -> Outcome:
    return Outcome("1-0", status, reason, "")  # type: ignore[arg-type]


def seed_counters(r: fakeredis.FakeRedis) -> None:
    """Two batches and three requests, written with the drain's own counter functions."""
    first = [outcome("delivered")] * 5 + [
        outcome("skipped", "toggle_off"),
        outcome("skipped", "toggle_off"),
        outcome("skipped", "path_blocked"),
        outcome("dead", "invalid_event"),
        outcome("retry", "http_503"),
    ]
    second = [outcome("delivered")] * 2 + [
        outcome("dead", "retries_exhausted"),
        outcome("paused", "http_401"),
        outcome("paused", "http_401"),
    ]
    pipe = r.pipeline(transaction=True)
    for batch in (first, second):
        counters.add_counts(pipe, KEYS, counters.outcome_counts(batch))
        counters.note_batch(pipe, KEYS, len(batch))
    counters.note_request(pipe, KEYS, NOW - 5, 202, 40)
    counters.note_request(pipe, KEYS, NOW - 4, 503, 60)
    counters.note_request(pipe, KEYS, NOW - 4, "timeout", 20)
    counters.note_request(pipe, KEYS, NOW - 30, 202, 999)  # outside the 10 s window
    pipe.execute()


def test_counters_by_outcome_reason_and_status(r: fakeredis.FakeRedis) -> None:
    seed_counters(r)
    s = scrape(r)
    assert one(s, "cio_relay_delivered_total") == 7
    assert labelled(s, "cio_relay_skipped_total", "reason") == {
        "toggle_off": 2,
        "path_blocked": 1,
    }
    assert labelled(s, "cio_relay_dead_total", "reason") == {
        "invalid_event": 1,
        "retries_exhausted": 1,
    }
    assert one(s, "cio_relay_retries_total") == 1
    assert one(s, "cio_relay_paused_events_total") == 2
    assert one(s, "cio_relay_batches_total") == 2
    assert one(s, "cio_relay_batch_entries_total") == 15
    assert one(s, "cio_relay_http_requests_total") == 4
    assert labelled(s, "cio_relay_http_responses_total", "status") == {
        "202": 2,
        "503": 1,
        "timeout": 1,
    }
    # 120 events and 3 requests in the last 10 complete seconds.
    assert one(s, "cio_relay_send_rate_events_per_second") == 12.0
    assert one(s, "cio_relay_send_rate_requests_per_second") == 0.3
    assert one(s, "cio_relay_redis_up") == 1


def test_outcomes_without_a_reason_are_labelled_none(r: fakeredis.FakeRedis) -> None:
    """The reason samples always add up to the outcome's total."""
    pipe = r.pipeline()
    counters.add_counts(
        pipe, KEYS, counters.outcome_counts([outcome("skipped"), outcome("skipped", "unsupported")])
    )
    pipe.execute()
    s = scrape(r)
    assert labelled(s, "cio_relay_skipped_total", "reason") == {"unsupported": 1, "none": 1}
    assert labelled(s, "cio_relay_dead_total", "reason") == {"none": 0}


def test_empty_redis_reads_as_zeros(r: fakeredis.FakeRedis) -> None:
    s = scrape(r)
    for name in (
        "cio_relay_delivered_total",
        "cio_relay_batches_total",
        "cio_relay_inbox_unread",
        "cio_relay_inbox_pending",
        "cio_relay_inbox_oldest_unread_age_seconds",
        "cio_relay_dlq_size",
        "cio_relay_throttled_seconds",
    ):
        assert one(s, name) == 0, name
    assert one(s, "cio_relay_paused", reason="") == 0
    assert labelled(s, "cio_relay_http_responses_total", "status") == {}


def test_inbox_lag_pending_ages_and_dlq(r: fakeredis.FakeRedis) -> None:
    """One entry read (pending), one parked for a retry, two unread; ages from stream ids."""
    ensure_group(r, KEYS)
    for second in (1000, 1500, 2000, 2500):
        r.xadd(KEYS.inbox, {"event": b"{}"}, id=f"{second * 1000}-0")
    r.xreadgroup(CONSUMER_GROUP, "w1", {KEYS.inbox: ">"}, count=2)
    pipe = r.pipeline()
    defer(pipe, KEYS, "1500000-0", NOW + 60)
    pipe.execute()
    for _ in range(3):
        r.xadd(KEYS.dlq, {"reason": "invalid_event", "raw": "{"})
    s = scrape(r)
    assert one(s, "cio_relay_inbox_length") == 4
    assert one(s, "cio_relay_inbox_pending") == 2
    assert one(s, "cio_relay_inbox_unread") == 2
    assert one(s, "cio_relay_inbox_waiting_retry") == 1
    assert one(s, "cio_relay_inbox_oldest_pending_age_seconds") == NOW - 1000
    assert one(s, "cio_relay_inbox_oldest_unread_age_seconds") == NOW - 2000
    assert one(s, "cio_relay_dlq_size") == 3


def test_paused_and_throttled(r: fakeredis.FakeRedis) -> None:
    reason = "Customer.io refused the credentials (401): check CIO_SITE_ID / CIO_API_KEY"
    r.set(KEYS.paused, reason)
    r.set(KEYS.throttled_until, str(NOW + 12.5))
    s = scrape(r)
    assert labelled(s, "cio_relay_paused", "reason") == {reason: 1}
    assert one(s, "cio_relay_throttled_seconds") == 12.5
    r.delete(KEYS.paused)
    assert labelled(scrape(r, NOW + 20), "cio_relay_paused", "reason") == {"": 0}
    assert one(scrape(r, NOW + 20), "cio_relay_throttled_seconds") == 0


def test_each_scrape_reads_redis_again(r: fakeredis.FakeRedis) -> None:
    """Numbers written by another replica between scrapes show in the next one."""
    assert one(scrape(r), "cio_relay_delivered_total") == 0
    r.hincrby(KEYS.counters, "delivered", 9)
    assert one(scrape(r), "cio_relay_delivered_total") == 9


def test_unreachable_redis_reports_redis_down() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    down = fakeredis.FakeRedis(server=server)
    s = scrape(down)
    assert s == {("cio_relay_redis_up", ()): 0}
