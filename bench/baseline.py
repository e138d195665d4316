"""The baseline a team would otherwise write: one Celery task per event, each POSTing that
event with ``requests`` to the v1 Track API, throttled by Celery's ``rate_limit="100/s"``.

It shares the relay's parsing (so both do the same work per event) and sends the same
ULID, so the emulator's records time both the same way. Run it with
``celery -A bench.baseline worker``; settings come from ``BENCH_BASELINE_*``.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import quote

import requests
from celery import Celery

from worker.identity import resolve
from worker.ids import event_ulid
from worker.mapping import page_name, person_attributes
from worker.normalize import normalize

RATE_LIMIT = "100/s"
TASK_NAME = "bench.baseline.post_event"

app = Celery("bench_baseline")
app.conf.update(
    broker_url=os.environ.get("BENCH_BASELINE_BROKER", "redis://127.0.0.1:6379/1"),
    broker_transport_options={"global_keyprefix": "bench-baseline:"},
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    result_backend=None,
    task_default_queue="bench-baseline",
    worker_hijack_root_logger=False,
)

_session: tuple[int, requests.Session] | None = None


def session() -> requests.Session:
    """A keep-alive session per process (more generous than a bare ``requests.post``)."""
    global _session
    if _session is None or _session[0] != os.getpid():
        s = requests.Session()
        s.auth = (
            os.environ.get("BENCH_BASELINE_SITE_ID", "dev-site"),
            os.environ.get("BENCH_BASELINE_API_KEY", "dev-key"),
        )
        _session = (os.getpid(), s)
    return _session[1]


def v1_request(raw: dict[str, Any], now: int) -> tuple[str, str, dict[str, Any]]:
    """Method, path and JSON body of the v1 call that carries one event."""
    event = normalize(raw, received_at=now, page_view_event="Page viewed")
    identity = resolve(event, "identify_by_email", {})
    if identity is None or identity.anonymous:
        raise ValueError("the benchmark mix only holds identified events")
    person = quote(identity.value, safe="")
    if event.kind == "identify":
        attributes = person_attributes(event)
        attributes.setdefault("email", identity.value)
        return "PUT", f"/api/v1/customers/{person}", attributes
    body: dict[str, Any] = {
        "name": page_name(event.url, "dead_letter") if event.kind == "page" else event.name,
        "id": event_ulid(event.dedupe_key),
        "timestamp": event.timestamp,
        "data": event.properties,
    }
    if event.kind == "page":
        body["type"] = "page"
    return "POST", f"/api/v1/customers/{person}/events", body


@app.task(name=TASK_NAME, bind=True, rate_limit=RATE_LIMIT, ignore_result=True, max_retries=20)
def post_event(self: Any, raw: dict[str, Any]) -> int:
    """Send one event; retry a 429 or 5xx a second later."""
    method, path, body = v1_request(raw, int(time.time()))
    base = os.environ.get("BENCH_BASELINE_URL", "http://127.0.0.1:8025")
    response = session().request(method, base + path, json=body, timeout=10)
    if response.status_code == 429 or response.status_code >= 500:
        raise self.retry(countdown=1)
    response.raise_for_status()
    return response.status_code
