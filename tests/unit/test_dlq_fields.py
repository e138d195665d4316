"""Dead-letter entries keep what a replay needs: the raw event, its arrival and its source."""

from __future__ import annotations

from worker.dlq import Attempts, DeadLetter, dead_letter_fields
from worker.inbox import Entry
from worker.outcomes import Outcome


def _letter(fields: dict[bytes, bytes]) -> DeadLetter:
    entry = Entry("1700000000000-0", fields)
    outcome = Outcome(entry.id, "dead", "invalid_field", "bad")
    return DeadLetter("1-0", dead_letter_fields(entry, outcome, Attempts(1, 1.0, 1.0), 2.0))


def test_replay_keeps_the_collector_source() -> None:
    """A browser copy replayed from the DLQ is still a client copy (collect rules apply)."""
    letter = _letter({b"event": b"{}", b"source": b"web", b"source_kind": b"client"})
    assert letter.inbox_fields() == {
        "event": "{}",
        "received_at": "1700000000",
        "source": "web",
        "source_kind": "client",
    }


def test_replay_without_a_source_stays_without() -> None:
    """An event written straight to Redis replays without source fields (a server copy)."""
    assert set(_letter({b"event": b"{}"}).inbox_fields()) == {"event", "received_at"}
