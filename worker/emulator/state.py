"""Everything one emulator instance holds, behind one lock, and the request/response types."""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from worker.emulator.faults import FaultConfig, FaultInjector
from worker.emulator.recorder import Counters, Recorder
from worker.emulator.store import Store

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(slots=True)
class Request:
    """One HTTP request as the handlers see it (``path`` without the query)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """A header's value, whatever the case of its name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(slots=True)
class Response:
    """One answer: a JSON body, or ``raw`` bytes of ``content_type``."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"


class EmulatorState:
    """Store, recorded requests, counters and faults of one emulated workspace."""

    def __init__(
        self,
        *,
        site_id: str,
        api_key: str,
        faults: FaultConfig | None = None,
        max_recorded: int = 100_000,
        max_recorded_bytes: int = 512 * 1024 * 1024,
        lean: bool = False,
        refuse_needs_duration: bool = True,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.lock = threading.Lock()
        self.site_id = site_id
        self._api_key = api_key
        self.lean = lean
        self.clock = clock
        self.sleep = sleep
        self.refuse_needs_duration = refuse_needs_duration
        self.base_url = ""
        self.listening = False
        self.started_at = clock()
        self.on_faults_changed: Callable[[], None] | None = None
        config = faults or FaultConfig()
        self._check_faults(config)
        self.injector = FaultInjector(config, self.started_at)
        self.store = Store(lean=lean)
        self.recorder = Recorder(max_recorded, max_recorded_bytes)
        self.counters = Counters()

    def __repr__(self) -> str:
        return f"EmulatorState(site_id={self.site_id!r}, url={self.base_url!r})"

    def authorized(self, header: str | None) -> bool:
        """Whether an Authorization header carries this workspace's Basic credentials."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        ok_user = hmac.compare_digest(user.encode(), self.site_id.encode())
        ok_password = hmac.compare_digest(password.encode(), self._api_key.encode())
        return bool(sep) and ok_user and ok_password

    @property
    def faults(self) -> FaultConfig:
        """The fault configuration in force (a timed outage that ended reads as off)."""
        with self.lock:
            self.injector.outage(self.clock())
            return self.injector.config

    def _check_faults(self, config: FaultConfig) -> None:
        if config.outage == "refuse" and config.outage_s is None and self.refuse_needs_duration:
            raise ValueError(
                "outage 'refuse' closes the port the control API is on: give outage_s, "
                "or start the emulator with a separate control port"
            )

    def set_faults(self, config: FaultConfig, *, reseed: bool = True) -> FaultConfig:
        """Put a fault configuration in force now; ValueError when it cannot be served."""
        self._check_faults(config)
        with self.lock:
            self.injector.configure(config, self.clock(), reseed=reseed)
        if self.on_faults_changed:
            self.on_faults_changed()
        return config

    def merge_faults(self, changes: Mapping[str, Any]) -> FaultConfig:
        """Change some fault settings, keeping the others; a new seed restarts the draws."""
        return self.set_faults(self.faults.merged(changes), reseed="seed" in changes)

    def outage_mode(self) -> str:
        """The outage mode in force now."""
        with self.lock:
            return self.injector.outage(self.clock())

    def reset(self, *, faults: bool = False) -> None:
        """Forget people, events, recorded requests and counters (and faults if asked)."""
        with self.lock:
            self.store = Store(lean=self.lean)
            self.recorder = Recorder(self.recorder.max_recorded, self.recorder.max_body_bytes)
            self.counters = Counters()
            self.injector.forget_requests()
        if faults:
            self.set_faults(FaultConfig())

    def counters_snapshot(self) -> dict[str, Any]:
        """Every counter, plus the store's sizes."""
        with self.lock:
            store = self.store
            return self.counters.snapshot(
                people=len(store.people),
                people_created=store.people_created,
                events_stored=len(store.events),
                events_merged=store.merged_events,
                requests_recorded=self.recorder.total,
            )
