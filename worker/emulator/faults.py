"""Fault injection: what to break (FaultConfig) and the state that decides each request."""

from __future__ import annotations

import dataclasses
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Literal

OutageMode = Literal["off", "503", "refuse"]
OUTAGE_MODES = ("off", "503", "refuse")
RETRY_AFTER_FORMATS = ("seconds", "http-date")


@dataclass(frozen=True)
class FaultConfig:
    """Every fault the emulator can inject; the defaults inject none.

    ``error_rates`` maps an HTTP status to the probability of answering it (their sum ≤ 1).
    ``outage_s`` None keeps an outage until it is cleared; ``refuse`` closes the listener.
    """

    rate_limit_rps: float | None = None
    retry_after_s: int | None = None
    retry_after_format: Literal["seconds", "http-date"] = "seconds"
    error_rates: Mapping[int, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    seed: int | None = None
    outage: OutageMode = "off"
    outage_s: float | None = None
    unauthorized: bool = False
    poison: str | None = None

    def __post_init__(self) -> None:
        """Refuse a configuration that makes no sense, naming the field."""
        if self.rate_limit_rps is not None and self.rate_limit_rps <= 0:
            raise ValueError("rate_limit_rps must be > 0 (or null for no limit)")
        if self.retry_after_s is not None and self.retry_after_s < 0:
            raise ValueError("retry_after_s must be >= 0 (or null for no Retry-After)")
        if self.retry_after_format not in RETRY_AFTER_FORMATS:
            raise ValueError("retry_after_format must be 'seconds' or 'http-date'")
        for status, rate in self.error_rates.items():
            if not 100 <= int(status) <= 599 or not 0 <= rate <= 1:
                raise ValueError("error_rates maps an HTTP status to a probability in [0, 1]")
        if sum(self.error_rates.values()) > 1:
            raise ValueError("error_rates must add up to at most 1")
        if self.latency_ms < 0 or self.latency_jitter_ms < 0:
            raise ValueError("latency_ms and latency_jitter_ms must be >= 0")
        if self.outage not in OUTAGE_MODES:
            raise ValueError("outage must be 'off', '503' or 'refuse'")
        if self.outage_s is not None and self.outage_s <= 0:
            raise ValueError("outage_s must be > 0 (or null until cleared)")
        if self.poison == "":
            raise ValueError("poison must be a non-empty marker (or null)")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-ready data (status codes as strings)."""
        data = dataclasses.asdict(self)
        data["error_rates"] = {str(k): v for k, v in sorted(self.error_rates.items())}
        return data

    def merged(self, changes: Mapping[str, Any]) -> FaultConfig:
        """A copy with ``changes`` applied; unknown names or bad types raise ValueError."""
        known = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}")
        values = {name: _coerce(name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultConfig:
        """A configuration from JSON data; missing names keep their defaults."""
        return cls().merged(data)


def _coerce(name: str, value: Any) -> Any:
    """Turn a JSON value into the field's type, or raise ValueError naming the field."""
    try:
        if name == "error_rates":
            if value is None:
                return {}
            if not isinstance(value, Mapping):
                raise TypeError
            return {int(status): float(rate) for status, rate in value.items()}
        if name in ("rate_limit_rps", "outage_s"):
            return None if value is None else float(value)
        if name in ("retry_after_s", "seed"):
            if isinstance(value, float) and not value.is_integer():
                raise TypeError
            return None if value is None else int(value)
        if name in ("latency_ms", "latency_jitter_ms"):
            return float(value or 0)
        if name == "unauthorized":
            if not isinstance(value, bool):
                raise TypeError
            return value
        if name == "outage":
            return "off" if value in (None, False) else str(value)
        if name in ("poison", "retry_after_format"):
            return None if value is None else str(value)
    except (TypeError, ValueError):
        raise ValueError(f"invalid value for {name}") from None
    return value


class FaultInjector:
    """Decides, request by request, which configured fault fires; call it under a lock."""

    def __init__(self, config: FaultConfig, now: float) -> None:
        self._window: deque[float] = deque()
        self._rng = random.Random(config.seed)
        self.config = config
        self._outage_until: float | None = None
        self.configure(config, now, reseed=True)

    def configure(self, config: FaultConfig, now: float, *, reseed: bool) -> None:
        """Apply a configuration; an outage window starts now."""
        if reseed:
            self._rng = random.Random(config.seed)
        restart = (config.outage, config.outage_s) != (self.config.outage, self.config.outage_s)
        if restart or self._outage_until is None:
            self._outage_until = (
                now + config.outage_s
                if config.outage != "off" and config.outage_s is not None
                else None
            )
        self.config = config

    def forget_requests(self) -> None:
        """Empty the rate limit window (on a reset)."""
        self._window.clear()

    def outage(self, now: float) -> OutageMode:
        """The outage mode in force now; a window that has ended is cleared."""
        until = self._outage_until
        if self.config.outage != "off" and until is not None and now >= until:
            self.config = dataclasses.replace(self.config, outage="off", outage_s=None)
            self._outage_until = None
        return self.config.outage

    def outage_remaining_s(self, now: float) -> float | None:
        """Seconds left in a timed outage, else None."""
        if self.outage(now) == "off" or self._outage_until is None:
            return None
        return max(self._outage_until - now, 0.0)

    def rate_limited(self, now: float) -> bool:
        """Whether a request now exceeds the limit over the last second (a sliding window).

        Only requests let through count towards the window.
        """
        rps = self.config.rate_limit_rps
        if rps is None:
            return False
        window = self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= rps:
            return True
        window.append(now)
        return False

    def retry_after(self, now: float) -> str | None:
        """The ``Retry-After`` value for a 429, or None to send none."""
        seconds = self.config.retry_after_s
        if seconds is None:
            return None
        if self.config.retry_after_format == "http-date":
            return formatdate(now + seconds, usegmt=True)
        return str(seconds)

    def injected_status(self) -> int | None:
        """A random error status to answer instead of processing, or None."""
        rates = self.config.error_rates
        if not rates:
            return None
        draw = self._rng.random()
        cumulative = 0.0
        for status in sorted(rates):
            cumulative += rates[status]
            if draw < cumulative:
                return status
        return None

    def latency_s(self) -> float:
        """Delay to add before answering, in seconds."""
        base, jitter = self.config.latency_ms, self.config.latency_jitter_ms
        if not base and not jitter:
            return 0.0
        return max(base + (self._rng.uniform(-jitter, jitter) if jitter else 0.0), 0.0) / 1000


def parse_error_rate(text: str) -> tuple[int, float]:
    """Read a ``STATUS=RATE`` option such as ``503=0.2``."""
    status, sep, rate = text.partition("=")
    if not sep:
        raise ValueError(f"expected STATUS=RATE, got {text!r}")
    return int(status), float(rate)


def parse_retry_after(text: str) -> tuple[int | None, str]:
    """Read ``none``, ``N`` (seconds) or ``http-date:N`` into seconds and format."""
    if text.lower() == "none":
        return None, "seconds"
    if text.lower().startswith("http-date:"):
        return int(text.split(":", 1)[1]), "http-date"
    return int(text), "seconds"
