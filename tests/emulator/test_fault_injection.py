"""Fault injection over real HTTP: rate limit, error rates, latency, outages, 401, poison."""

from __future__ import annotations

import random
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import pytest
import requests

from worker.emulator import EmulatorClient, EmulatorServer, FaultConfig

from .helpers import API_KEY, NOW, SITE_ID, FakeClock, FakeSleep, Track, person_op

REGION = "/api/v1/accounts/region"


def _statuses(track: Track, count: int) -> list[int]:
    return [track.call("GET", REGION).status_code for _ in range(count)]


@pytest.fixture
def isolated(clock: FakeClock) -> Iterator[EmulatorServer]:
    """An emulator of its own (outage tests close its port), without a control port."""
    server = EmulatorServer(site_id=SITE_ID, api_key=API_KEY, clock=clock).start()
    yield server
    server.stop()


@pytest.fixture
def with_control_port(clock: FakeClock) -> Iterator[EmulatorServer]:
    """An emulator that also serves the control API on a second port."""
    server = EmulatorServer(site_id=SITE_ID, api_key=API_KEY, clock=clock, control_port=0).start()
    yield server
    server.stop()


def test_rate_limit_answers_429_without_retry_after(
    emulator: EmulatorServer, track: Track, control: EmulatorClient
) -> None:
    """Beyond ``rate_limit_rps`` in one second the answer is 429, with no Retry-After by default."""
    emulator.set_faults(rate_limit_rps=2)
    responses = [track.call("GET", REGION) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert "Retry-After" not in responses[2].headers
    assert control.counters()["rate_limited"] == 1


def test_rate_limit_sends_retry_after_seconds(emulator: EmulatorServer, track: Track) -> None:
    """A configured Retry-After in seconds comes with each 429."""
    emulator.set_faults(rate_limit_rps=1, retry_after_s=7)
    track.call("GET", REGION)
    assert track.call("GET", REGION).headers["Retry-After"] == "7"


def test_rate_limit_sends_retry_after_http_date(emulator: EmulatorServer, track: Track) -> None:
    """Retry-After can be an HTTP-date that many seconds ahead."""
    emulator.set_faults(rate_limit_rps=1, retry_after_s=7, retry_after_format="http-date")
    track.call("GET", REGION)
    header = track.call("GET", REGION).headers["Retry-After"]
    assert parsedate_to_datetime(header).timestamp() == NOW + 7


def test_rate_limit_window_slides(emulator: EmulatorServer, track: Track, clock: FakeClock) -> None:
    """Once a second has passed, requests are let through again."""
    emulator.set_faults(rate_limit_rps=1)
    assert _statuses(track, 2) == [200, 429]
    clock.advance(1.0)
    assert _statuses(track, 2) == [200, 429]


def test_seeded_error_rates_follow_the_seed(
    emulator: EmulatorServer, track: Track, control: EmulatorClient
) -> None:
    """Injected errors follow the seeded random draws, and each is counted."""
    emulator.set_faults(error_rates={503: 0.3, 500: 0.2}, seed=7)
    draws = random.Random(7)
    expected = []
    for _ in range(30):
        draw = draws.random()
        expected.append(500 if draw < 0.2 else 503 if draw < 0.5 else 200)
    assert _statuses(track, 30) == expected
    faults = control.counters()["faults"]
    assert (faults.get("error_500", 0), faults.get("error_503", 0)) == (
        expected.count(500),
        expected.count(503),
    )


def test_injected_429_carries_retry_after(emulator: EmulatorServer, track: Track) -> None:
    """A 429 from the error rates carries the configured Retry-After."""
    emulator.set_faults(error_rates={429: 1.0}, retry_after_s=3)
    response = track.call("GET", REGION)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "3")


def test_latency_is_added_before_answering(
    emulator: EmulatorServer, track: Track, control: EmulatorClient, sleeps: FakeSleep
) -> None:
    """Configured latency is slept before answering and counted."""
    emulator.set_faults(latency_ms=250)
    track.call("GET", REGION)
    assert sleeps.calls == [0.25]
    faults = control.counters()["faults"]
    assert (faults["latency"], faults["latency_ms"]) == (1, 250)


def test_latency_jitter_stays_in_range(
    emulator: EmulatorServer, track: Track, sleeps: FakeSleep
) -> None:
    """Jitter spreads latency within ± the configured amount."""
    emulator.set_faults(latency_ms=100, latency_jitter_ms=50, seed=1)
    _statuses(track, 10)
    calls = sleeps.calls
    assert len(calls) == 10
    assert all(0.05 <= s <= 0.15 for s in calls)
    assert len(set(calls)) > 1


def test_timed_503_outage_ends_on_time(
    emulator: EmulatorServer, track: Track, clock: FakeClock, control: EmulatorClient
) -> None:
    """A 503 outage answers 503 until its window ends, then serves again."""
    emulator.set_faults(outage="503", outage_s=10)
    assert _statuses(track, 1) == [503]
    clock.advance(9.9)
    assert _statuses(track, 1) == [503]
    clock.advance(0.1)
    assert _statuses(track, 1) == [200]
    assert control.faults()["outage"] == "off"
    assert control.counters()["faults"]["outage_503"] == 2


def test_503_outage_lasts_until_cleared(emulator: EmulatorServer, track: Track) -> None:
    """A 503 outage without a duration lasts until it is turned off."""
    emulator.set_faults(outage="503")
    assert _statuses(track, 1) == [503]
    emulator.set_faults(outage="off")
    assert _statuses(track, 1) == [200]


def test_refuse_outage_closes_the_port(with_control_port: EmulatorServer) -> None:
    """A refuse outage closes the Track API port; clearing it reopens the same port."""
    track = Track(with_control_port.url)
    control = EmulatorClient(with_control_port.control_url)
    control.set_faults(outage="refuse")
    with pytest.raises(requests.ConnectionError):
        track.call("GET", REGION)
    assert control.health()["listening"] is False
    control.set_faults(outage="off")
    assert _statuses(track, 1) == [200]


def test_refuse_outage_drops_kept_alive_connections(with_control_port: EmulatorServer) -> None:
    """A connection kept alive from before the outage is dropped unanswered."""
    track = Track(with_control_port.url)
    assert _statuses(track, 1) == [200]
    with_control_port.set_faults(outage="refuse")
    with pytest.raises(requests.ConnectionError):
        track.call("GET", REGION)
    counters = EmulatorClient(with_control_port.control_url).counters()
    assert counters["faults"]["outage_refused"] == 1


def test_timed_refuse_outage_reopens(isolated: EmulatorServer, clock: FakeClock) -> None:
    """A timed refuse outage reopens the port once its window has passed."""
    track = Track(isolated.url)
    isolated.set_faults(outage="refuse", outage_s=5)
    with pytest.raises(requests.ConnectionError):
        track.call("GET", REGION)
    clock.advance(5)
    assert isolated.wait_listening(timeout_s=5)
    assert _statuses(track, 1) == [200]


def test_timed_refuse_can_be_set_over_the_port_it_closes(
    isolated: EmulatorServer, clock: FakeClock
) -> None:
    """A timed refuse outage set through the main port is answered, then the port closes."""
    faults = EmulatorClient(isolated.url).set_faults(outage="refuse", outage_s=5)
    assert (faults["outage"], faults["outage_remaining_s"]) == ("refuse", 5)
    with pytest.raises(requests.ConnectionError):
        Track(isolated.url).call("GET", REGION)
    clock.advance(5)
    assert isolated.wait_listening(timeout_s=5)
    assert EmulatorClient(isolated.url).faults()["outage"] == "off"


def test_untimed_refuse_needs_a_control_port(isolated: EmulatorServer) -> None:
    """Refusing until cleared without a control port is refused, in process and over HTTP."""
    with pytest.raises(ValueError, match="control port"):
        isolated.set_faults(outage="refuse")
    response = requests.put(
        f"{isolated.url}/_emulator/faults", json={"outage": "refuse"}, timeout=5
    )
    assert response.status_code == 400
    assert isolated.faults.outage == "off"


def test_unauthorized_mode_answers_401(
    emulator: EmulatorServer, track: Track, control: EmulatorClient
) -> None:
    """In 401 mode every Track request answers 401 until the mode is turned off."""
    emulator.set_faults(unauthorized=True)
    assert track.batch(person_op("event", name="a")).status_code == 401
    assert _statuses(track, 1) == [401]
    assert control.counters()["faults"]["unauthorized_mode"] == 2
    emulator.set_faults(unauthorized=False)
    assert _statuses(track, 1) == [200]


def test_poison_rejects_the_whole_batch(
    emulator: EmulatorServer, track: Track, control: EmulatorClient
) -> None:
    """A batch with an operation holding the marker is refused whole with 400, nothing applied."""
    emulator.set_faults(poison="POISON-7")
    clean = [person_op("event", name="a"), person_op("event", name="b")]
    poisoned = person_op("event", name="c", attributes={"note": "x POISON-7 y"})
    response = track.batch(clean[0], poisoned, clean[1])
    assert response.status_code == 400
    assert "error" in response.json()["meta"]
    assert control.events() == []
    assert track.batch(*clean).status_code == 200
    assert len(control.events()) == 2


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/customers/42/events", {"name": "POISON-7"}),
        ("PUT", "/api/v1/customers/POISON-7", {"a": 1}),
        ("POST", "/api/v2/entity", person_op("identify", attributes={"a": "POISON-7"})),
    ],
    ids=["v1-body", "v1-path", "entity"],
)
def test_poison_rejects_single_requests(
    emulator: EmulatorServer, track: Track, method: str, path: str, body: object
) -> None:
    """v1 and entity requests holding the marker are refused with 400."""
    emulator.set_faults(poison="POISON-7")
    response = track.call(method, path, body)
    assert response.status_code == 400
    assert "error" in response.json()["meta"]


def test_faults_given_at_start_apply(clock: FakeClock) -> None:
    """A FaultConfig passed to the constructor is in force from the first request."""
    faults = FaultConfig(unauthorized=True)
    with EmulatorServer(site_id=SITE_ID, api_key=API_KEY, clock=clock, faults=faults) as server:
        assert _statuses(Track(server.url), 1) == [401]
