"""``cio-relay metrics`` as a real process: scraped over HTTP while a relay delivers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import ROOT, Relay, free_port, sigterm_and_wait, wait_until
from worker.emulator import EmulatorClient
from worker.producer import enqueue_many

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("cio-relay"))


def event(name: str, i: int) -> dict[str, object]:
    return {
        "type": "track",
        "event": name,
        "userId": f"metrics-user-{i}",
        "messageId": f"metrics-{name}-{i}",
        "timestamp": "2026-03-02T10:15:00Z",
        "context": {"traits": {"email": f"metrics{i}@example.com"}},
    }


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Metric samples by name, then by their sorted labels."""
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_follow_the_relay_and_stop_on_sigterm(
    relay: Relay, emulator_client: EmulatorClient
) -> None:
    port = free_port()
    log = open(relay.logdir / "metrics.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [CLI, "metrics", "--port", str(port)],
        env=relay.env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:

        def up() -> bool:
            try:
                return requests.get(url, timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_until(up, 30, "the metrics endpoint")
        first = scrape(url)
        assert first["cio_relay_redis_up"] == {(): 1}
        assert first["cio_relay_delivered_total"] == {(): 0}

        _, refused = enqueue_many(
            relay.redis,
            [event("Purchased", i) for i in range(6)]
            + [event("Disabled event", i) for i in range(2)],
            prefix=relay.prefix,
        )
        assert refused == []

        def settled() -> bool:
            m = scrape(url)
            return (
                m["cio_relay_delivered_total"][()] == 6
                and m["cio_relay_skipped_total"].get((("reason", "toggle_off"),)) == 2
            )

        wait_until(settled, 60, "6 delivered and 2 skipped in the metrics")
        m = scrape(url)
        assert len(emulator_client.events()) == 6
        responses = m["cio_relay_http_responses_total"]
        assert sum(responses.values()) == m["cio_relay_http_requests_total"][()] >= 1
        assert all(dict(labels)["status"].startswith("2") for labels in responses)
        assert m["cio_relay_inbox_unread"][()] == 0
        assert m["cio_relay_inbox_pending"][()] == 0
        assert m["cio_relay_dlq_size"][()] == 0
        assert m["cio_relay_paused"] == {(("reason", ""),): 0}
        assert m["cio_relay_dead_total"] == {(("reason", "none"),): 0}
    finally:
        try:
            code = sigterm_and_wait(proc, 15)
        finally:
            log.close()
    assert code == 0, (relay.logdir / "metrics.log").read_text()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
