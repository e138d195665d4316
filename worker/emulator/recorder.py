"""What the emulator saw: a bounded log of requests and counters that are never trimmed."""

from __future__ import annotations

import itertools
import json
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

# Header values never stored as received.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers as recorded: credentials replaced, keeping the auth scheme for contract checks."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} [redacted]" if scheme else "[redacted]"
        out[name] = value
    return out


class Recorder:
    """The last requests, each with a sequence number counted from 0.

    At most ``max_recorded`` requests, and bodies of at most ``max_body_bytes`` in all, are
    kept; the oldest go first. Bodies are kept as received and parsed only when read, so
    holding many large batches costs their bytes and nothing more.
    """

    def __init__(self, max_recorded: int, max_body_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_recorded = max_recorded
        self.max_body_bytes = max_body_bytes
        self._records: deque[dict[str, Any]] = deque()
        self._body_bytes = 0
        self._seq = itertools.count()
        self.total = 0

    def add(self, record: dict[str, Any], body: bytes = b"") -> None:
        """Keep one request record and its raw body, dropping the oldest beyond the caps."""
        record["seq"] = next(self._seq)
        self.total += 1
        if self.max_recorded <= 0:
            return
        if body:
            record["_body"] = body
            self._body_bytes += len(body)
        self._records.append(record)
        while self._records and (
            len(self._records) > self.max_recorded or self._body_bytes > self.max_body_bytes
        ):
            self._body_bytes -= len(self._records.popleft().get("_body", b""))

    def since(self, seq: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """Records with sequence number ≥ ``seq`` still held, oldest first (see ``readable``)."""
        first = self._records[0]["seq"] if self._records else 0
        start = max(seq - first, 0)
        stop = None if limit is None else start + max(limit, 0)
        return list(itertools.islice(self._records, start, stop))


def readable(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the control API shows it, its body parsed (else the start of its text)."""
    out = {k: v for k, v in record.items() if k != "_body"}
    raw = record.get("_body")
    if raw is not None:
        try:
            out["body"] = json.loads(raw)
        except ValueError:
            out["body"] = raw[:1000].decode("utf-8", "replace")
    return out


class Counters:
    """Totals by kind; each ``Counter`` is keyed by a short stable name."""

    def __init__(self) -> None:
        self.requests: dict[str, Counter[str]] = {}
        self.status: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.totals: Counter[str] = Counter()

    def request(self, route: str, status: int, body_bytes: int) -> None:
        """Count one answered request by route template and status."""
        code = str(status)
        self.requests.setdefault(route, Counter())[code] += 1
        self.status[code] += 1
        self.totals["requests"] += 1
        self.totals["bytes_received"] += body_bytes

    def snapshot(self, **extra: Any) -> dict[str, Any]:
        """All counters as JSON-ready data."""
        return {
            "requests_total": self.totals["requests"],
            "bytes_received": self.totals["bytes_received"],
            "requests": {route: dict(codes) for route, codes in sorted(self.requests.items())},
            "status": dict(self.status),
            "operations": dict(self.operations),
            "operations_rejected": self.totals["operations_rejected"],
            "events_accepted": self.totals["events_accepted"],
            "events_duplicate": self.totals["events_duplicate"],
            "rate_limited": self.faults["rate_limit"],
            "unauthorized": self.status["401"],
            "outcomes": dict(self.outcomes),
            "faults": dict(self.faults),
            **extra,
        }
