"""Server-side callbacks: what they receive, change, drop, and how failures are reported."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from worker.errors import CallbackFailed
from worker.events import Event
from worker.workflow.callbacks import apply_callback, event_to_dict, load_callback

CALLBACKS = """
seen = []

def keep(event):
    seen.append(event)
    return event

def rename(event):
    event["name"] = "Renamed"
    event["properties"]["margin"] = 12.5
    event["timestamp"] = 1700000001.9
    return event

def drop(event):
    return None

def divide(event):
    return 1 / 0

def mutate_and_fail(event):
    event["properties"]["products"][0]["price"] = 0
    raise ValueError("bad product\\nsecond line")

def returns_list(event):
    return [event]

def typo(event):
    event["propertes"] = {}
    return event

def partial(event):
    return {"url": None}

def set_key(key, value):
    def callback(event):
        event[key] = value
        return event
    return callback

not_callable = 42
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of a fresh importable module holding test callbacks."""
    name = f"cio_test_callbacks_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(CALLBACKS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


EVENT = Event(
    kind="track",
    name="Added to cart",
    timestamp=1_700_000_000,
    dedupe_key="m-1",
    source="segment",
    properties={"products": [{"price": 29.0, "quantity": 2}]},
    traits={"email": "ada@example.com"},
    external_ids={"crm_user_id": "C-1"},
    url="https://shop.example.com/cart",
    user_id="u_1",
    anonymous_id="anon-1",
    message_id="m-1",
)


def test_event_dict_has_exactly_the_documented_keys() -> None:
    """A callback receives name, kind, properties, traits, url, timestamp and anonymous_id."""
    assert event_to_dict(EVENT) == {
        "name": "Added to cart",
        "kind": "track",
        "properties": {"products": [{"price": 29.0, "quantity": 2}]},
        "traits": {"email": "ada@example.com"},
        "url": "https://shop.example.com/cart",
        "timestamp": 1_700_000_000,
        "anonymous_id": "anon-1",
    }


def test_unchanged_dict_gives_an_equal_event(module: str) -> None:
    """Returning the dict as received leaves the event as it was."""
    assert apply_callback(EVENT, f"{module}:keep") == EVENT


def test_changes_are_applied(module: str) -> None:
    """Changed fields land in the new event; a float timestamp becomes an int."""
    changed = apply_callback(EVENT, f"{module}:rename")
    assert changed is not None
    assert changed.name == "Renamed"
    assert changed.properties["margin"] == 12.5
    assert changed.timestamp == 1_700_000_001
    assert changed.external_ids == EVENT.external_ids
    assert changed.user_id == "u_1"


def test_partial_dict_changes_only_its_keys(module: str) -> None:
    """A dict with some of the keys changes only those."""
    changed = apply_callback(EVENT, f"{module}:partial")
    assert changed is not None
    assert changed.url is None
    assert changed.name == EVENT.name


def test_none_drops_the_event(module: str) -> None:
    """A callback returning None drops the event."""
    assert apply_callback(EVENT, f"{module}:drop") is None


def test_exception_gives_the_last_traceback_line(module: str) -> None:
    """An exception becomes CallbackFailed with the traceback's last line."""
    with pytest.raises(CallbackFailed) as caught:
        apply_callback(EVENT, f"{module}:divide")
    assert caught.value.last_line == "ZeroDivisionError: division by zero"


def test_failed_callback_cannot_change_the_event(module: str) -> None:
    """A callback that mutates its dict then raises leaves the original event untouched."""
    with pytest.raises(CallbackFailed) as caught:
        apply_callback(EVENT, f"{module}:mutate_and_fail")
    assert caught.value.last_line == "ValueError: bad product"
    assert EVENT.properties["products"][0]["price"] == 29.0


@pytest.mark.parametrize(
    ("callback", "needle"),
    [
        ("returns_list", "returned list; expected the event dict or None"),
        ("typo", "unknown keys propertes"),
    ],
)
def test_bad_return_values(module: str, callback: str, needle: str) -> None:
    """A return value that is not a dict of known keys is CallbackFailed with a clear line."""
    with pytest.raises(CallbackFailed) as caught:
        apply_callback(EVENT, f"{module}:{callback}")
    assert needle in caught.value.last_line


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("name", "", "name must be a non-empty string"),
        ("name", 5, "name must be a non-empty string"),
        ("kind", "purchase", "kind must be one of"),
        ("properties", [], "properties must be a dict"),
        ("traits", {1: "x"}, "traits must be a dict with string keys"),
        ("url", 5, "url must be a string or None"),
        ("anonymous_id", 7, "anonymous_id must be a string or None"),
        ("timestamp", "2026-01-01", "timestamp must be Unix seconds"),
        ("timestamp", True, "timestamp must be Unix seconds"),
        ("timestamp", float("nan"), "timestamp must be Unix seconds"),
    ],
)
def test_bad_field_types(
    module: str, monkeypatch: pytest.MonkeyPatch, key: str, value: object, needle: str
) -> None:
    """Each returned field is type-checked before a new event is built."""
    import importlib

    mod = importlib.import_module(module)
    monkeypatch.setattr(mod, "bad", mod.set_key(key, value), raising=False)
    with pytest.raises(CallbackFailed) as caught:
        apply_callback(EVENT, f"{module}:bad")
    assert needle in caught.value.last_line
    assert caught.value.last_line.startswith(f"callback {module}:bad returned a bad event")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("cio_no_such_module_here:f", "cannot be imported: ModuleNotFoundError"),
        ("{module}:missing", "has no 'missing'"),
        ("{module}:not_callable", "'not_callable' is not a function"),
        ("no_colon", "must look like"),
    ],
)
def test_import_failures(module: str, spec: str, needle: str) -> None:
    """A callback that cannot be loaded raises CallbackFailed naming the callback."""
    with pytest.raises(CallbackFailed) as caught:
        apply_callback(EVENT, spec.format(module=module))
    assert needle in caught.value.last_line


def test_load_callback_is_cached(module: str) -> None:
    """The same spec gives the same function object without importing again."""
    assert load_callback(f"{module}:keep") is load_callback(f"{module}:keep")


def test_failed_import_is_remembered(module: str, tmp_path: Path) -> None:
    """A module that was missing stays reported missing (no re-import per event)."""
    name = f"cio_late_{uuid.uuid4().hex}"
    with pytest.raises(CallbackFailed):
        load_callback(f"{name}:f")
    (tmp_path / f"{name}.py").write_text("def f(e):\n    return e\n")
    with pytest.raises(CallbackFailed, match="cannot be imported"):
        load_callback(f"{name}:f")
