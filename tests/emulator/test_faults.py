"""Fault configuration and the injector's decisions, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from worker.emulator.faults import FaultConfig, FaultInjector, parse_error_rate, parse_retry_after
from worker.emulator.recorder import Recorder, redact_headers


def test_defaults_inject_nothing() -> None:
    """A default configuration never limits, fails, delays or breaks."""
    injector = FaultInjector(FaultConfig(), now=0.0)
    assert not any(injector.rate_limited(0.0) for _ in range(1000))
    assert injector.injected_status() is None
    assert injector.latency_s() == 0.0
    assert injector.outage(0.0) == "off"


def test_from_dict_reads_json_types() -> None:
    """JSON data with string status codes becomes a typed configuration."""
    config = FaultConfig.from_dict({"error_rates": {"503": 0.2}, "rate_limit_rps": 5, "seed": 1})
    assert (config.error_rates, config.rate_limit_rps, config.seed) == ({503: 0.2}, 5.0, 1)


def test_to_dict_round_trips() -> None:
    """``to_dict`` output reads back to an equal configuration."""
    config = FaultConfig(error_rates={503: 0.5}, outage="503", outage_s=3, poison="P")
    assert FaultConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "changes",
    [
        {"latency_ms": -1},
        {"outage_s": 0},
        {"poison": ""},
        {"retry_after_format": "rfc"},
        {"error_rates": {"99": 0.1}},
        {"error_rates": [503]},
        {"seed": 1.5},
    ],
)
def test_invalid_settings_raise(changes: dict[str, Any]) -> None:
    """Settings that make no sense raise ValueError."""
    with pytest.raises(ValueError):
        FaultConfig().merged(changes)


def test_timed_outage_clears_itself() -> None:
    """A timed outage reads as off once its window has passed."""
    injector = FaultInjector(FaultConfig(outage="503", outage_s=2), now=100.0)
    assert (injector.outage(101.9), injector.outage_remaining_s(101.0)) == ("503", 1.0)
    assert injector.outage(102.0) == "off"
    assert injector.config.outage == "off"


def test_changing_other_faults_keeps_the_outage_window() -> None:
    """Reconfiguring unrelated faults does not restart a running outage window."""
    injector = FaultInjector(FaultConfig(outage="503", outage_s=10), now=0.0)
    injector.configure(injector.config.merged({"latency_ms": 5}), 5.0, reseed=False)
    assert injector.outage_remaining_s(5.0) == 5.0


def test_rate_limit_counts_only_requests_let_through() -> None:
    """Refused requests do not extend the window."""
    injector = FaultInjector(FaultConfig(rate_limit_rps=2), now=0.0)
    assert [injector.rate_limited(t) for t in (0.0, 0.1, 0.2, 0.9, 1.0, 1.05)] == [
        False,
        False,
        True,
        True,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("none", (None, "seconds")), ("7", (7, "seconds")), ("http-date:30", (30, "http-date"))],
)
def test_parse_retry_after(text: str, expected: tuple[int | None, str]) -> None:
    """``--retry-after`` reads none, seconds, or an HTTP-date offset."""
    assert parse_retry_after(text) == expected


def test_parse_error_rate() -> None:
    """``--error-rate`` reads STATUS=RATE."""
    assert parse_error_rate("503=0.25") == (503, 0.25)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Basic c2l0ZTprZXk="}, "Basic [redacted]"),
        ({"authorization": "Bearer abc"}, "Bearer [redacted]"),
        ({"Authorization": "opaque"}, "[redacted]"),
    ],
)
def test_redact_headers_keeps_only_the_scheme(headers: dict[str, str], expected: str) -> None:
    """Credentials are replaced; the scheme stays for the contract check."""
    assert list(redact_headers(headers).values()) == [expected]


def test_recorder_since_counts_from_the_first_kept_record() -> None:
    """After trimming, ``since`` still addresses records by their sequence number."""
    recorder = Recorder(max_recorded=3)
    for _ in range(5):
        recorder.add({})
    assert [r["seq"] for r in recorder.since(3)] == [3, 4]
    assert [r["seq"] for r in recorder.since(0)] == [2, 3, 4]


def test_recorder_drops_oldest_beyond_the_byte_budget() -> None:
    """When bodies exceed the byte budget the oldest requests go, counted in ``total``."""
    recorder = Recorder(max_recorded=100, max_body_bytes=10)
    for _ in range(4):
        recorder.add({}, b"1234")
    assert [r["seq"] for r in recorder.since(0)] == [2, 3]
    assert recorder.total == 4
