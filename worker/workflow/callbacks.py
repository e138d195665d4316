"""Server-side callbacks: a user function that may change or drop an event before it is sent.

A callback is named ``"package.module:function"``; it receives the event as a plain dict
(``event_to_dict``) and returns that dict changed, or None to drop the event. Anything
that goes wrong (the import, an exception, a bad return value) raises CallbackFailed
with one line, and the event is dead-lettered with it.
"""

from __future__ import annotations

import copy
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from worker.errors import CallbackFailed
from worker.events import KINDS, Event

Callback = Callable[[dict[str, Any]], Any]

CALLBACK_KEYS = ("name", "kind", "properties", "traits", "url", "timestamp", "anonymous_id")
MAX_LINE = 500

# Import results by spec, failures included: a missing module is not looked for again
# for every event (deploying a fix means restarting the workers anyway).
_loaded: dict[str, Callback | CallbackFailed] = {}


def load_callback(spec: str) -> Callback:
    """Import the function ``spec`` names (cached); CallbackFailed says why it cannot."""
    found = _loaded.get(spec)
    if found is None:
        found = _import(spec)
        _loaded[spec] = found
    if isinstance(found, CallbackFailed):
        raise CallbackFailed(found.last_line)
    return found


def _import(spec: str) -> Callback | CallbackFailed:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        return CallbackFailed(f'callback {spec!r} must look like "package.module:function"')
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        return CallbackFailed(f"callback {spec} cannot be imported: {exception_line(exc)}")
    func = getattr(module, attr, None)
    if func is None:
        return CallbackFailed(f"callback {spec}: module {module_name} has no {attr!r}")
    if not callable(func):
        return CallbackFailed(f"callback {spec}: {attr!r} is not a function")
    return func


def event_to_dict(event: Event) -> dict[str, Any]:
    """The dict a callback receives; deep copies, so a callback cannot change the event."""
    return {
        "name": event.name,
        "kind": event.kind,
        "properties": copy.deepcopy(event.properties),
        "traits": copy.deepcopy(event.traits),
        "url": event.url,
        "timestamp": event.timestamp,
        "anonymous_id": event.anonymous_id,
    }


def apply_callback(event: Event, spec: str) -> Event | None:
    """Run one callback on an event: the changed event, or None when the callback drops it."""
    func = load_callback(spec)
    try:
        result = func(event_to_dict(event))
    except Exception as exc:
        raise CallbackFailed(exception_line(exc)) from exc
    if result is None:
        return None
    if not isinstance(result, Mapping):
        raise CallbackFailed(
            f"callback {spec} returned {type(result).__name__}; expected the event dict or None"
        )
    return replace(event, **_checked_changes(result, spec))


def _checked_changes(result: Mapping[Any, Any], spec: str) -> dict[str, Any]:
    unknown = sorted(str(k) for k in result if k not in CALLBACK_KEYS)
    if unknown:
        raise CallbackFailed(
            f"callback {spec} returned unknown keys {', '.join(unknown)} "
            f"(allowed: {', '.join(CALLBACK_KEYS)})"
        )
    changes = dict(result)
    problems = []
    if "name" in changes and not (isinstance(changes["name"], str) and changes["name"].strip()):
        problems.append("name must be a non-empty string")
    if "kind" in changes and changes["kind"] not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)}")
    for key in ("properties", "traits"):
        if key in changes and not _is_str_dict(changes[key]):
            problems.append(f"{key} must be a dict with string keys")
    for key in ("url", "anonymous_id"):
        if key in changes and changes[key] is not None and not isinstance(changes[key], str):
            problems.append(f"{key} must be a string or None")
    if "timestamp" in changes:
        stamp = _timestamp(changes["timestamp"])
        if stamp is None:
            problems.append("timestamp must be Unix seconds (an integer)")
        else:
            changes["timestamp"] = stamp
    if problems:
        raise CallbackFailed(f"callback {spec} returned a bad event: {'; '.join(problems)}")
    return changes


def _is_str_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


def _timestamp(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


def exception_line(exc: BaseException) -> str:
    """The last line of the exception's traceback, e.g. ``ZeroDivisionError: division by zero``."""
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = f"{kind.__module__}.{name}"
    message = str(exc).strip()
    line = f"{name}: {message.splitlines()[0]}" if message else name
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."
