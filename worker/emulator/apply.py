"""Applying valid v2 person operations to the store, and counting what became of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.emulator.recorder import Counters
from worker.emulator.store import Ref, Store
from worker.emulator.validation import EVENT_ACTIONS


def _ref(identifiers: Mapping[str, str]) -> Ref:
    kind, value = next(iter(identifiers.items()))
    return kind, value


def apply_operation(store: Store, op: dict[str, Any], endpoint: str, now: float) -> str:
    """Apply one valid v2 operation (person or object); returns the store's outcome."""
    if op["type"] == "object":
        return apply_object_operation(store, op, now)
    action = op["action"]
    if action == "merge":
        return store.merge(_ref(op["primary"]), _ref(op["secondary"]), now)
    ref = _ref(op["identifiers"])
    if action == "identify":
        attributes = op.get("attributes") or {}
        return store.identify(ref, attributes, timestamp=op.get("timestamp"), now=now)
    if action in EVENT_ACTIONS:
        return store.track(
            ref, op, event_type=action, data_key="attributes", endpoint=endpoint, now=now
        )
    if action == "delete":
        return store.delete(ref)
    if action == "suppress":
        return store.suppress(ref)
    if action == "add_device":
        return store.add_device(ref, op["device"], now)
    if action == "delete_device":
        return store.delete_device(ref, op["device"]["token"])
    return store.unsuppress(ref)


def apply_object_operation(store: Store, op: dict[str, Any], now: float) -> str:
    """Apply one valid v2 object operation; returns the store's outcome."""
    key = store.find_object(op["identifiers"])
    if key is None:
        return "object_not_found"
    action = op["action"]
    if action == "delete":
        return store.delete_object(key)
    items = op.get("cio_relationships") or []
    if action == "identify_anonymous":
        anonymous = [
            (i["identifiers"]["anonymous_id"], i.get("relationship_attributes") or {})
            for i in items
        ]
        return store.identify_object(key, op.get("attributes") or {}, [], anonymous, now)
    people = [(_ref(i["identifiers"]), i.get("relationship_attributes") or {}) for i in items]
    if action == "identify":
        return store.identify_object(key, op.get("attributes") or {}, people, [], now)
    if action == "add_relationships":
        return store.add_relationships(key, people, now)
    return store.delete_relationships(key, [ref for ref, _ in people])


def count_outcome(counters: Counters, outcome: str, operation: str) -> None:
    """Count one applied operation and its outcome; call under the state lock."""
    counters.operations[operation] += 1
    counters.outcomes[outcome] += 1
    if outcome == "accepted":
        counters.totals["events_accepted"] += 1
    elif outcome == "duplicate":
        counters.totals["events_duplicate"] += 1
