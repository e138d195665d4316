"""Send prepared operations to Customer.io and turn every response into outcomes.

Batches go to ``/api/v2/batch`` packed under 500 KB; anonymous events one by one to
``/api/v1/events``. A whole-request 400/413 on a batch is bisected until the refused
operations stand alone, so one bad operation never dead-letters its neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from worker.batching import batch_body, pack
from worker.client import Response, TrackClient, error_message
from worker.errors import PauseDelivery, Rejected, RetryLater
from worker.outcomes import REJECTED, Outcome
from worker.prepare import Ready
from worker.ratelimit import SharedRateLimiter

NOT_SENT = "not_sent"  # deferred without a failed attempt (budget, throttle or pause)

log = structlog.get_logger("cio_relay.delivery")

RequestHook = Callable[[int | str, int], None]


class Deliverer:
    """Delivers one drain cycle's operations under the shared rate limit."""

    def __init__(
        self,
        client: TrackClient,
        limiter: SharedRateLimiter,
        on_request: RequestHook | None = None,
    ) -> None:
        self._client = client
        self._limiter = limiter
        self._on_request = on_request or (lambda status, events: None)

    def deliver(self, ready: Sequence[Ready], deadline: float) -> list[Outcome]:
        """Send everything; every item of ``ready`` gets exactly one outcome."""
        batched = [r for r in ready if r.operation.endpoint == "batch"]
        anonymous = [r for r in ready if r.operation.endpoint == "anonymous"]
        runs: list[list[Ready]] = [
            [batched[i] for i in run] for run in pack([len(r.operation.encoded) for r in batched])
        ]
        runs.extend([r] for r in anonymous)
        outcomes: list[Outcome] = []
        stop: Outcome | None = None
        for run in runs:
            if stop is not None:
                outcomes.extend(_like(r, stop) for r in run)
                continue
            run_outcomes, stop = self._send_run(run, deadline)
            outcomes.extend(run_outcomes)
        return outcomes

    def _send_run(self, run: list[Ready], deadline: float) -> tuple[list[Outcome], Outcome | None]:
        """Outcomes for one request's items, and an outcome to give every later run if
        this failure means nothing else should be sent now."""
        if not self._limiter.acquire(deadline):
            held = Outcome("", "retry", NOT_SENT, "send budget or throttle")
            return [_like(r, held) for r in run], held
        try:
            response = self._post(run)
        except RetryLater as exc:
            if exc.status == 429:
                wait = exc.retry_after_s if exc.retry_after_s is not None else 1.0
                self._limiter.throttle(wait)
            failed = Outcome(
                "",
                "retry",
                f"http_{exc.status}" if exc.status else "network",
                str(exc),
                http_status=exc.status,
                excerpt=exc.excerpt,
                retry_after_s=exc.retry_after_s,
            )
            log.warning(
                "delivery_retry",
                events=len(run),
                status=exc.status,
                error=str(exc),
                retry_after_s=exc.retry_after_s,
            )
            held = Outcome("", "retry", NOT_SENT, "held back after a failed request")
            return [_like(r, failed) for r in run], held
        except PauseDelivery as exc:
            paused = Outcome(
                "",
                "paused",
                f"http_{exc.status}",
                str(exc),
                http_status=exc.status,
                excerpt=exc.excerpt,
            )
            return [_like(r, paused) for r in run], paused
        except Rejected as exc:
            if len(run) > 1:
                half = len(run) // 2
                first, stop = self._send_run(run[:half], deadline)
                if stop is not None:
                    return first + [_like(r, stop) for r in run[half:]], stop
                second, stop = self._send_run(run[half:], deadline)
                return first + second, stop
            dead = Outcome(
                "",
                "dead",
                REJECTED,
                error_message(exc.excerpt),
                http_status=exc.status,
                excerpt=exc.excerpt,
            )
            return [_like(run[0], dead)], None
        failed_items = {e.index: e.message for e in response.item_errors}
        outcomes = []
        for i, r in enumerate(run):
            if i in failed_items:
                outcomes.append(
                    r.outcome("dead", reason=REJECTED, detail=failed_items[i], http_status=207)
                )
            else:
                # r.outcome("delivered", http_status=...), spelled out: one per event sent
                outcomes.append(
                    Outcome(
                        r.entry.id,
                        "delivered",
                        None,
                        "",
                        r.event_id,
                        r.event.name,
                        r.identity.value,
                        response.status,
                    )
                )
        return outcomes, None

    def _post(self, run: list[Ready]) -> Response:
        status: int | str = "error"
        try:
            if run[0].operation.endpoint == "anonymous":
                response = self._client.send_anonymous_event(run[0].operation.encoded)
            else:
                response = self._client.send_batch(batch_body([r.operation.encoded for r in run]))
            status = response.status
            return response
        except (RetryLater, PauseDelivery, Rejected) as exc:
            status = exc.status if exc.status is not None else "network"
            raise
        finally:
            self._on_request(status, len(run))


def _like(ready: Ready, template: Outcome) -> Outcome:
    """The template outcome, for this entry."""
    return ready.outcome(
        template.status,
        reason=template.reason,
        detail=template.detail,
        http_status=template.http_status,
        excerpt=template.excerpt,
        retry_after_s=template.retry_after_s,
    )
