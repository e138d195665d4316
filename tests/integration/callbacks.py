"""Server-side callbacks the integration workflow names."""

from __future__ import annotations

from typing import Any


def add_margin(event: dict[str, Any]) -> dict[str, Any]:
    """Add a margin property, as a shop's callback would."""
    event["properties"]["margin"] = 42
    return event


def drop(event: dict[str, Any]) -> None:
    """Drop every event."""
    return None
