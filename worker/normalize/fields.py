"""Field readers shared by both input shapes: type checks, names, message id, dedupe key."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from worker.errors import InvalidEvent
from worker.normalize.values import coerce_id, describe


def expect_object(value: object, field: str) -> dict[str, Any]:
    """Return ``value`` when it is an object, ``{}`` when null or absent, else refuse it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent("invalid_field", f"{field} must be an object, not {describe(value)}.")
    return value


def optional_text(value: object, field: str) -> str | None:
    """Return stripped text, None for null or blank text, and refuse any other type."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent("invalid_field", f"{field} must be a string, not {describe(value)}.")
    return value.strip() or None


def first_text(*candidates: object) -> str | None:
    """Return the first candidate that is non-blank text, stripped; ignore everything else."""
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def message_id(value: object, field: str) -> str | None:
    """Read a message id: non-blank text or an integer, as text; null or blank is None."""
    return coerce_id(value, field)


def dedupe_key(msg_id: str | None, raw: object) -> str:
    """Return ``msg:<id>`` when the event has a message id, else a hash of its canonical JSON."""
    if msg_id is not None:
        return f"msg:{msg_id}"
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # surrogatepass: a lone surrogate from a "\ud800" escape is valid JSON and must still hash.
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest}"


def device_context(context: dict[str, Any]) -> dict[str, Any]:
    """``context.device`` with ``context.os`` under ``os``; what is not an object is
    ignored, since only the device mapping reads it."""
    device = context.get("device")
    os_info = context.get("os")
    if device is None and os_info is None:
        return {}
    found = dict(device) if isinstance(device, dict) else {}
    if isinstance(os_info, dict) and os_info:
        found["os"] = dict(os_info)
    return found


def app_context(context: dict[str, Any]) -> dict[str, Any]:
    """``context.app`` (a mobile app's name, version, build), or ``{}``."""
    app = context.get("app")
    return dict(app) if isinstance(app, dict) else {}
