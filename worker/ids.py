"""Deterministic event ids: the same source event always gets the same ULID."""

from __future__ import annotations

import hashlib

from ulid import ULID


def event_ulid(dedupe_key: str) -> str:
    """A valid ULID derived from the event's message id or content hash.

    Customer.io de-duplicates on the ULID and ignores its embedded time, so 128 bits of
    a SHA-256 are as good as a random ULID and make retries and replays send the same id.
    """
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).digest()[:16]
    return str(ULID.from_bytes(digest))
