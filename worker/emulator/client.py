"""A small client of the emulator's control API, for tests, the benchmark and scripts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests


class EmulatorClient:
    """Reads and drives a running emulator through ``/_emulator/``."""

    def __init__(
        self, base_url: str, *, session: requests.Session | None = None, timeout_s: float = 10.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"EmulatorClient({self.base_url!r})"

    def _call(self, method: str, name: str, **kwargs: Any) -> requests.Response:
        response = self._session.request(
            method, f"{self.base_url}/_emulator/{name}", timeout=self._timeout_s, **kwargs
        )
        response.raise_for_status()
        return response

    def health(self) -> dict[str, Any]:
        """Whether it serves, its URL, and the outage in force."""
        return self._call("GET", "health").json()

    def requests(self, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Recorded Track API requests from sequence number ``since`` on."""
        params: dict[str, Any] = {"since": since}
        if limit is not None:
            params["limit"] = limit
        return self._call("GET", "requests", params=params).json()

    def requests_jsonl(self, since: int = 0) -> str:
        """Recorded requests in the input format of ``cio-contract-check``."""
        return self._call("GET", "requests", params={"since": since, "format": "jsonl"}).text

    def events(self, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored events from sequence number ``since`` on (at most ``limit`` of them)."""
        params: dict[str, Any] = {"since": since}
        if limit is not None:
            params["limit"] = limit
        return self._call("GET", "events", params=params).json()

    def people(self) -> list[dict[str, Any]]:
        """Every person in the store."""
        return self._call("GET", "people").json()

    def objects(self) -> list[dict[str, Any]]:
        """Every object with its attributes and relationships."""
        return self._call("GET", "objects").json()

    def counters(self) -> dict[str, Any]:
        """Request, outcome and fault counters."""
        return self._call("GET", "counters").json()

    def faults(self) -> dict[str, Any]:
        """The fault configuration in force."""
        return self._call("GET", "faults").json()

    def set_faults(self, *, replace: bool = False, **changes: Any) -> dict[str, Any]:
        """Change fault settings by name (or replace them all); returns the new configuration."""
        params = {"replace": "true"} if replace else {}
        return self._call("PUT", "faults", json=changes, params=params).json()

    def reset(self, *, faults: bool = False) -> None:
        """Forget store, recorded requests and counters (and faults if asked)."""
        self._call("POST", "reset", json={"faults": faults})

    def wait_until(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout_s: float = 30.0,
        poll_s: float = 0.05,
    ) -> dict[str, Any]:
        """Poll the counters until ``predicate(counters)`` holds; TimeoutError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            counters = self.counters()
            if predicate(counters):
                return counters
            if time.monotonic() >= deadline:
                raise TimeoutError(f"emulator counters did not reach the condition: {counters}")
            time.sleep(poll_s)

    def wait_for_events(self, count: int, *, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` events are stored, then return them all."""
        self.wait_until(lambda c: c["events_stored"] >= count, timeout_s=timeout_s)
        return self.events()
