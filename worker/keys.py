"""Every Redis key the relay uses, built from the configured prefix in one place."""

from __future__ import annotations

from dataclasses import dataclass

CONSUMER_GROUP = "relay"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix (``CIO_REDIS_PREFIX``, default ``cio``)."""

    prefix: str = "cio"

    def _k(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    @property
    def inbox(self) -> str:
        """Stream of raw events; consumer group ``relay``."""
        return self._k("inbox")

    @property
    def dlq(self) -> str:
        """Stream of dead-lettered events with their reason."""
        return self._k("dlq")

    @property
    def activity(self) -> str:
        """Capped stream of recent outcomes."""
        return self._k("activity")

    @property
    def workflow(self) -> str:
        """Hash holding the live workflow."""
        return self._k("workflow")

    @property
    def retry_due(self) -> str:
        """Sorted set: inbox entry id -> Unix time its next attempt is due."""
        return self._k("retry:due")

    @property
    def attempts(self) -> str:
        """Hash: inbox entry id -> failed attempts; ``<id>:first`` -> first attempt time."""
        return self._k("retry:attempts")

    @property
    def last_error(self) -> str:
        """Hash: inbox entry id -> JSON of the last failed attempt (status, excerpt)."""
        return self._k("retry:last_error")

    @property
    def paused(self) -> str:
        """String: why delivery is paused (401/403/3xx); absent when running."""
        return self._k("paused")

    @property
    def throttled_until(self) -> str:
        """String: Unix time before which no replica sends (after a 429)."""
        return self._k("throttled_until")

    @property
    def counters(self) -> str:
        """Hash of outcome counters shared by all replicas."""
        return self._k("counters")

    @property
    def ratelimit_prefix(self) -> str:
        """Key prefix for the shared request rate limiter."""
        return self._k("ratelimit")

    @property
    def live_drains(self) -> str:
        """Sorted set: running drain task id -> Unix time until which it counts as running."""
        return self._k("drains:live")

    @property
    def audit(self) -> str:
        """Capped stream: who changed what in the console or CLI, and when."""
        return self._k("audit")

    @property
    def workflow_history(self) -> str:
        """Capped list of past workflow versions (JSON: version, author, time, workflow)."""
        return self._k("workflow:history")

    @property
    def catalogue(self) -> str:
        """Hash: event name -> times seen; ``<name>\x00last`` and ``<name>\x00kinds`` too."""
        return self._k("catalogue")

    @property
    def console_secret(self) -> str:
        """String: the console's session signing secret when CIO_CONSOLE_SECRET is unset."""
        return self._k("console:secret")

    def login_failures(self, who: str) -> str:
        """Counter with an expiry: failed console sign-ins for one user and address."""
        return self._k(f"console:login_failures:{who}")

    def identity(self, kind: str, value: str) -> str:
        """String: the identifier remembered for an anonymous id or user id."""
        return self._k(f"identity:{kind}:{value}")

    def rate(self, second: int) -> str:
        """Hash: requests and events sent during one Unix second (expires soon after)."""
        return self._k(f"rate:{second}")

    def lease(self, name: str) -> str:
        """String with an expiry: one replica at a time does ``name`` (reclaim, probe)."""
        return self._k(f"lease:{name}")
