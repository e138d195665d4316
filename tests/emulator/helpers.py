"""Test helpers: fake clock and sleep, a relay-like Track API client, operation builders."""

from __future__ import annotations

from typing import Any

import requests

SITE_ID = "site-test"
API_KEY = "key-test-not-real"
NOW = 1_750_000_000.0


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSleep:
    """Records requested sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Track:
    """A Track API client the way the relay talks: Basic auth, JSON, one session."""

    def __init__(self, base_url: str, auth: tuple[str, str] | None = (SITE_ID, API_KEY)) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.auth = auth

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["json"] = body
        return self.session.request(method, self.base_url + path, timeout=5, **kwargs)

    def batch(self, *ops: dict[str, Any]) -> requests.Response:
        return self.call("POST", "/api/v2/batch", {"batch": list(ops)})


def person_op(action: str, ref: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """One v2 person operation."""
    return {
        "type": "person",
        "identifiers": {"id": "42"} if ref is None else ref,
        "action": action,
        **fields,
    }
