"""Fixtures: an emulator on a free port with a fake clock and sleep, and clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.emulator import EmulatorClient, EmulatorServer

from .helpers import API_KEY, NOW, SITE_ID, FakeClock, FakeSleep, Track


@pytest.fixture(scope="session")
def _shared_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def _shared_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture(scope="session")
def _shared_emulator(
    _shared_clock: FakeClock, _shared_sleep: FakeSleep
) -> Iterator[EmulatorServer]:
    server = EmulatorServer(
        "127.0.0.1", 0, site_id=SITE_ID, api_key=API_KEY, clock=_shared_clock, sleep=_shared_sleep
    ).start()
    yield server
    server.stop()


@pytest.fixture
def clock(_shared_clock: FakeClock) -> FakeClock:
    """The emulator's fake wall clock, set to NOW."""
    _shared_clock.now = NOW
    return _shared_clock


@pytest.fixture
def sleeps(_shared_sleep: FakeSleep) -> FakeSleep:
    """The emulator's sleep, recording added latency (emptied for each test)."""
    _shared_sleep.calls.clear()
    return _shared_sleep


@pytest.fixture
def emulator(
    _shared_emulator: EmulatorServer, clock: FakeClock, sleeps: FakeSleep
) -> EmulatorServer:
    """A running emulator on a free loopback port, empty and without faults."""
    _shared_emulator.reset(faults=True)
    return _shared_emulator


@pytest.fixture
def track(emulator: EmulatorServer) -> Track:
    """A Track API client with the right credentials."""
    return Track(emulator.url)


@pytest.fixture
def control(emulator: EmulatorServer) -> EmulatorClient:
    """A control API client."""
    return EmulatorClient(emulator.url)
