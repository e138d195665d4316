"""Every exception the relay raises, named for what the worker does about it."""

from __future__ import annotations


class RelayError(Exception):
    """Root of every cio-relay error."""


class ConfigError(RelayError):
    """Raised when a setting or file is missing or invalid; the process must not start."""


class InvalidEvent(RelayError):
    """Raised when an inbox entry cannot be read as an event; it is dead-lettered.

    ``reason`` is a short stable code (``invalid_json``, ``not_an_object``…), ``detail``
    a human sentence.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class RejectedEvent(RelayError):
    """Raised when an event must be dead-lettered, not retried (limits, identity, callback)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DeliveryError(RelayError):
    """Root of the outcomes of one HTTP request to Customer.io that was not a success."""

    def __init__(self, message: str, *, status: int | None = None, excerpt: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.excerpt = excerpt


class RetryLater(DeliveryError):
    """Raised on 408, 429, 5xx (not 501), timeouts and connection errors: try again later.

    ``retry_after_s`` is the server's ``Retry-After`` when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        excerpt: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, status=status, excerpt=excerpt)
        self.retry_after_s = retry_after_s


class Rejected(DeliveryError):
    """Raised on 400, 404, 413, 422 and other 4xx: Customer.io will never accept this request."""


class PauseDelivery(DeliveryError):
    """Raised on 401, 403 and any 3xx: the destination is misconfigured; stop, keep all."""


class WorkflowError(ConfigError):
    """Raised when a workflow file is malformed; ``line`` is 1-based, or None if unknown."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        where = f"line {line}: " if line else ""
        super().__init__(f"{where}{reason}")
        self.reason = reason
        self.line = line


class CallbackFailed(RelayError):
    """Raised when a server-side callback raises; the event is dead-lettered with the last line."""

    def __init__(self, last_line: str) -> None:
        super().__init__(last_line)
        self.last_line = last_line
