"""The normalised event: one immutable type for both input shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from worker.consent import Consent

Kind = Literal["identify", "track", "page", "screen", "group", "alias"]
KINDS: tuple[str, ...] = ("identify", "track", "page", "screen", "group", "alias")


@dataclass(frozen=True, slots=True)
class Event:
    """One event after parsing, whatever shape it arrived in.

    All values are unwrapped from CustomerLabs' ``{"t": type, "v": value}`` form.
    ``name`` is the workflow name (``Page viewed``, ``Create user``, ``Added to cart``…).
    ``properties`` holds the event's own data; a product list sits under ``products``.
    ``identify_markers`` holds the CustomerLabs identify-by markers (leaf with ``"ib": true``)
    by key, e.g. ``{"identify_by_email": "ada@example.com"}``.
    ``dedupe_key`` is the source of the event's ULID: its message id, else a content hash.
    ``group_id`` is the Customer.io object an event names: Segment's ``groupId`` (or
    ``context.groupId``), a CustomerLabs group's ``"igb": true`` value.
    ``device`` and ``app`` are the sender's ``context.device`` and ``context.app`` (a mobile
    app's push token and platform, its version), plus ``os`` from ``context.os``.
    ``consent`` is what the sender said about consent, None when it said nothing.
    """

    kind: Kind
    name: str
    timestamp: int
    dedupe_key: str
    source: Literal["customerlabs", "segment"]
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    external_ids: dict[str, Any] = field(default_factory=dict)
    identify_markers: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    message_id: str | None = None
    group_id: str | None = None
    device: dict[str, Any] = field(default_factory=dict)
    app: dict[str, Any] = field(default_factory=dict)
    consent: Consent | None = None
