"""The Customer.io Track API client: the only module that imports ``requests``.

It turns HTTP statuses and ``requests`` exceptions into the relay's outcome classes:
RetryLater (408, 429, 5xx except 501, timeouts, connection errors), Rejected (other
4xx) and PauseDelivery (401, 403, 3xx).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests
from pydantic import SecretStr

from worker.errors import PauseDelivery, Rejected, RetryLater

EXCERPT_CHARS = 500
RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class ItemError:
    """One operation of a batch that Customer.io refused (from a 207 response)."""

    index: int
    message: str


@dataclass(frozen=True, slots=True)
class Response:
    """A request Customer.io accepted; ``item_errors`` lists 207 refusals by batch index."""

    status: int
    item_errors: tuple[ItemError, ...] = field(default_factory=tuple)


class TrackClient:
    """Sends requests to one Customer.io workspace over a pooled HTTP session."""

    def __init__(
        self,
        base_url: str,
        site_id: str,
        api_key: SecretStr,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session or requests.Session()
        self._session.auth = (site_id, api_key.get_secret_value())
        self._session.headers.update(
            {"Content-Type": "application/json", "User-Agent": "cio-relay"}
        )
        self._timeout = (connect_timeout_s, read_timeout_s)
        self._clock = clock

    def __repr__(self) -> str:
        return f"TrackClient(base_url={self.base_url!r})"

    def send_batch(self, body: bytes) -> Response:
        """POST ``/api/v2/batch``; a 207 comes back as item errors."""
        return self._request("POST", "/api/v2/batch", body)

    def send_anonymous_event(self, body: bytes) -> Response:
        """POST ``/api/v1/events`` for an event with only an anonymous id."""
        return self._request("POST", "/api/v1/events", body)

    def check_region(self) -> dict[str, object]:
        """GET ``/api/v1/accounts/region``: proves the credentials and region are right."""
        response = self._send("GET", "/api/v1/accounts/region", None)
        raise_for_status(response.status_code, response.headers, response.text, self._clock())
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        return payload if isinstance(payload, dict) else {}

    def close(self) -> None:
        self._session.close()

    def _request(self, method: str, path: str, body: bytes | None) -> Response:
        response = self._send(method, path, body)
        raise_for_status(response.status_code, response.headers, response.text, self._clock())
        if response.status_code == 207:
            return Response(207, parse_item_errors(response.text))
        return Response(response.status_code)

    def _send(self, method: str, path: str, body: bytes | None) -> requests.Response:
        try:
            return self._session.request(
                method,
                self.base_url + path,
                data=body,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise RetryLater(f"timeout calling Customer.io {path}") from exc
        except requests.ConnectionError as exc:
            raise RetryLater(f"cannot connect to Customer.io {path}") from exc
        except requests.RequestException as exc:
            raise RetryLater(f"request to Customer.io {path} failed: {type(exc).__name__}") from exc


def raise_for_status(status: int, headers: Mapping[str, str], text: str, now: float) -> None:
    """Raise the outcome class for a non-success status; return for 2xx."""
    excerpt = text[:EXCERPT_CHARS]
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        where = headers.get("Location", "?")
        raise PauseDelivery(
            f"Customer.io redirected ({status} to {where}): check CIO_REGION / CIO_TRACK_URL",
            status=status,
            excerpt=excerpt,
        )
    if status in (401, 403):
        raise PauseDelivery(
            f"Customer.io refused the credentials ({status}): check CIO_SITE_ID / CIO_API_KEY",
            status=status,
            excerpt=excerpt,
        )
    if status in RETRYABLE_STATUSES or (status >= 500 and status != 501):
        raise RetryLater(
            f"Customer.io answered {status}",
            status=status,
            excerpt=excerpt,
            retry_after_s=parse_retry_after(headers.get("Retry-After"), now),
        )
    raise Rejected(f"Customer.io rejected the request ({status})", status=status, excerpt=excerpt)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def parse_item_errors(text: str) -> tuple[ItemError, ...]:
    """The failed operations of a 207 body ``{"errors": [{"batch_index": i, ...}]}``."""
    try:
        payload = json.loads(text)
    except ValueError:
        return ()
    errors = payload.get("errors") if isinstance(payload, dict) else None
    found: list[ItemError] = []
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict) and isinstance(item.get("batch_index"), int):
            parts = [str(item[k]) for k in ("reason", "field", "message") if item.get(k)]
            found.append(ItemError(item["batch_index"], "; ".join(parts) or "rejected"))
    return tuple(found)


def error_message(text: str) -> str:
    """The message of a 400 body, in either of Customer.io's two documented shapes."""
    try:
        meta = json.loads(text).get("meta", {})
    except (ValueError, AttributeError):
        return text[:EXCERPT_CHARS]
    if isinstance(meta, dict):
        if isinstance(meta.get("error"), str):
            return meta["error"]
        if isinstance(meta.get("errors"), list):
            return "; ".join(str(e) for e in meta["errors"])
    return text[:EXCERPT_CHARS]
