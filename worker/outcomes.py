"""What happened to one inbox entry: the vocabulary every stage and report shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["delivered", "skipped", "retry", "dead", "paused"]

# Skip reasons
TOGGLE_OFF = "toggle_off"
PATH_BLOCKED = "path_blocked"
SOURCE_FILTERED = "source_filtered"  # the event's `collect` refuses this kind of source
CALLBACK_DROPPED = "callback_dropped"
UNSUPPORTED = "unsupported"
SAME_PERSON = "same_person"  # an alias whose two ids already name one person
CONSENT_DENIED = "consent_denied"  # the workflow's [consent] categories are not granted

# Dead-letter reasons raised by the relay itself (parse errors carry their own codes)
MISSING_IDENTIFIER = "missing_identifier"
CALLBACK_ERROR = "callback_error"
REJECTED = "rejected"
RETRIES_EXHAUSTED = "retries_exhausted"
TOO_LARGE = "too_large"
UNPROCESSABLE = "unprocessable"  # an entry that made preparation fail unexpectedly


@dataclass(slots=True)
class Outcome:
    """The fate of one entry; ``reason`` is a stable code, ``detail`` a sentence for people."""

    entry_id: str
    status: Status
    reason: str | None = None
    detail: str = ""
    event_id: str | None = None
    name: str | None = None
    identifier: str | None = None
    http_status: int | None = None
    excerpt: str = ""
    retry_after_s: float | None = None
