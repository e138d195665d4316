"""The dead-letter queue ``<prefix>:dlq``: what could not be delivered, why, and replay.

Each entry keeps the original raw event exactly as it arrived, so a replay re-enqueues
the same bytes and Customer.io receives the same ULID.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from worker.inbox import Entry
from worker.keys import Keys
from worker.outcomes import Outcome
from worker.redisconn import StreamRow, as_text, stream_fields, stream_rows

RAW_FIELDS_MARKER = "fields"  # raw entry had no "event" field: all its fields, as JSON


@dataclass(frozen=True, slots=True)
class Attempts:
    """How often an entry was tried, and when first and last."""

    count: int
    first_at: float
    last_at: float

    def encode(self) -> str:
        return f"{self.count}|{self.first_at:.3f}|{self.last_at:.3f}"

    @classmethod
    def decode(cls, raw: bytes | str | None, now: float) -> Attempts:
        """The stored attempts, or none yet (first and last = now)."""
        if not raw:
            return cls(0, now, now)
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            count, first, last = text.split("|")
            return cls(int(count), float(first), float(last))
        except ValueError:
            return cls(0, now, now)

    def failed(self, now: float) -> Attempts:
        return Attempts(self.count + 1, self.first_at if self.count else now, now)


def dead_letter_fields(
    entry: Entry, outcome: Outcome, attempts: Attempts, now: float
) -> dict[str, str]:
    """The DLQ entry for one dead outcome (strings only; the raw event kept byte for byte)."""
    raw = entry.fields.get(b"event")
    fields = {
        "reason": outcome.reason or "unknown",
        "detail": outcome.detail,
        "inbox_id": entry.id,
        "received_at": str(entry.received_at),
        "attempts": str(attempts.count),
        "first_attempt_at": f"{attempts.first_at:.3f}",
        "last_attempt_at": f"{attempts.last_at:.3f}",
        "dead_at": f"{now:.3f}",
    }
    if raw is not None:
        fields["raw"] = raw.decode("utf-8", "replace")
    else:
        fields["raw_kind"] = RAW_FIELDS_MARKER
        fields["raw"] = json.dumps(
            {
                k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                for k, v in entry.fields.items()
            },
            ensure_ascii=False,
        )
    optional = {
        "event_id": outcome.event_id,
        "name": outcome.name,
        "http_status": outcome.http_status,
        "response": outcome.excerpt or None,
    }
    fields.update({k: str(v) for k, v in optional.items() if v is not None})
    # Where it came from (the collector's source), so a replay is filtered the same way.
    for name in SOURCE_FIELDS:
        value = entry.fields.get(name.encode())
        if value is not None and raw is not None:
            fields[name] = value.decode("utf-8", "replace")
    return fields


SOURCE_FIELDS = ("source", "source_kind")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DLQ entry as read back."""

    id: str
    fields: dict[str, str]

    @property
    def reason(self) -> str:
        return self.fields.get("reason", "")

    @property
    def dead_at(self) -> float:
        return float(self.fields.get("dead_at", "0") or 0)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.fields}

    def inbox_fields(self) -> dict[str, str]:
        """The fields to XADD back to the inbox for a replay."""
        if self.fields.get("raw_kind") == RAW_FIELDS_MARKER:
            original: dict[str, str] = json.loads(self.fields["raw"])
            return {**original, "received_at": self.fields.get("received_at", "")}
        fields = {"event": self.fields["raw"], "received_at": self.fields.get("received_at", "")}
        fields.update({k: self.fields[k] for k in SOURCE_FIELDS if k in self.fields})
        return fields


@dataclass(frozen=True, slots=True)
class Filter:
    """Which DLQ entries a list, replay or purge acts on (all when every field is None)."""

    reason: str | None = None
    name: str | None = None
    since: float | None = None
    until: float | None = None
    ids: tuple[str, ...] = ()

    def matches(self, letter: DeadLetter) -> bool:
        if self.ids and letter.id not in self.ids:
            return False
        if self.reason and letter.reason != self.reason:
            return False
        if self.name and letter.fields.get("name") != self.name:
            return False
        if self.since is not None and letter.dead_at < self.since:
            return False
        return not (self.until is not None and letter.dead_at > self.until)


class DeadLetterQueue:
    """Reads and acts on ``<prefix>:dlq``."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def size(self) -> int:
        return int(self._redis.xlen(self._keys.dlq))

    def scan(self, flt: Filter = Filter(), page: int = 500) -> Iterator[DeadLetter]:
        """Every matching entry, oldest first, read page by page."""
        if flt.ids:
            for eid in flt.ids:
                for row in stream_rows(self._redis.xrange(self._keys.dlq, eid, eid)):
                    letter = _letter(row)
                    if flt.matches(letter):
                        yield letter
            return
        start = "-"
        while True:
            reply = self._redis.xrange(self._keys.dlq, start, "+", count=page)
            for row in stream_rows(reply):
                letter = _letter(row)
                if flt.matches(letter):
                    yield letter
            if not reply or len(reply) < page:
                return
            last_id = reply[-1][0]
            if last_id is None:
                return
            start = "(" + as_text(last_id)

    def get(self, entry_id: str) -> DeadLetter | None:
        rows = stream_rows(self._redis.xrange(self._keys.dlq, entry_id, entry_id))
        return _letter(rows[0]) if rows else None

    def replay(
        self,
        flt: Filter,
        *,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> list[DeadLetter]:
        """Move matching entries back to the inbox (same raw bytes), removing them here.

        Each move is one MULTI (XADD to the inbox, XDEL here), so an entry is never in
        both places nor in neither.
        """
        moved: list[DeadLetter] = []
        for letter in list(self.scan(flt)):
            if not dry_run:
                pipe = self._redis.pipeline(transaction=True)
                pipe.xadd(self._keys.inbox, stream_fields(letter.inbox_fields()))
                pipe.xdel(self._keys.dlq, letter.id)
                pipe.execute()
            moved.append(letter)
            if progress:
                progress(1)
        return moved

    def purge(self, flt: Filter, *, dry_run: bool = False) -> int:
        """Delete matching entries; returns how many."""
        ids = [letter.id for letter in self.scan(flt)]
        if not dry_run:
            for start in range(0, len(ids), 500):
                self._redis.xdel(self._keys.dlq, *ids[start : start + 500])
        return len(ids)


def _letter(row: StreamRow) -> DeadLetter:
    rid, fields = row
    return DeadLetter(rid, {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()})
