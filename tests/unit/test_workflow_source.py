"""Source filtering: an inbox entry's source kind and the ``collect`` rule that weighs it."""

from __future__ import annotations

import pytest

from worker.inbox import Entry
from worker.workflow.model import EventRule, TriggerPath, Workflow
from worker.workflow.rules import Decision, decide

SHOP = "https://shop.example.com"
FIRE = Decision(True, None)
TOGGLE_OFF = Decision(False, "toggle_off")
SOURCE_FILTERED = Decision(False, "source_filtered")
PATH_BLOCKED = Decision(False, "path_blocked")


def entry(**fields: bytes) -> Entry:
    """An inbox entry with an event and the given extra stream fields."""
    return Entry("1700000000000-0", {b"event": b"{}", **{k.encode(): v for k, v in fields.items()}})


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"source": b"web", "source_kind": b"client"}, "client"),
        ({"source": b"backend", "source_kind": b"server"}, "server"),
        ({}, "server"),
        ({"source": b"web"}, "server"),
        ({"source_kind": b"Client"}, "server"),
        ({"source_kind": b"browser"}, "server"),
        ({"source_kind": b""}, "server"),
        ({"source_kind": b"client "}, "server"),
        ({"source_kind": b"\xff"}, "server"),
    ],
    ids=["client", "server", "direct-xadd", "no-kind", "upper", "other", "empty", "space", "bytes"],
)
def test_entry_source_kind(fields: dict[str, bytes], kind: str) -> None:
    """Only the collector's exact b"client" makes a client copy; anything else is a server's."""
    assert entry(**fields).source_kind == kind


def listing(collect: str, **kw: object) -> Workflow:
    """A workflow listing one event, "E", with the given collect mode."""
    return Workflow(events={"E": EventRule(collect=collect, **kw)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("collect", "kind", "expected"),
    [
        ("any", "client", FIRE),
        ("any", "server", FIRE),
        ("server", "server", FIRE),
        ("server", "client", SOURCE_FILTERED),
        ("client", "client", FIRE),
        ("client", "server", SOURCE_FILTERED),
    ],
)
def test_collect_against_the_source_kind(collect: str, kind: str, expected: Decision) -> None:
    """A copy from the kind of source the rule's collect refuses is source_filtered."""
    assert decide(listing(collect), "E", f"{SHOP}/", kind) == expected  # type: ignore[arg-type]


def test_source_kind_defaults_to_server() -> None:
    """Callers that pass no source kind decide as for a backend's copy."""
    assert decide(listing("client"), "E", None) == SOURCE_FILTERED
    assert decide(listing("server"), "E", None) == FIRE


def test_toggle_off_comes_before_source_filtered() -> None:
    """A disabled event is toggle_off whatever its source."""
    workflow = listing("server", enabled=False)
    assert decide(workflow, "E", f"{SHOP}/", "client") == TOGGLE_OFF


def test_source_filtered_comes_before_path_rules() -> None:
    """A refused source is reported as such even on a blocked path or without a URL."""
    blocked = listing(
        "server", require_url=True, trigger_paths=(TriggerPath("/admin", "prefix", "dont_fire"),)
    )
    assert decide(blocked, "E", f"{SHOP}/admin/x", "client") == SOURCE_FILTERED
    assert decide(blocked, "E", None, "client") == SOURCE_FILTERED
    assert decide(blocked, "E", f"{SHOP}/admin/x", "server") == PATH_BLOCKED
    assert decide(blocked, "E", f"{SHOP}/shop", "server") == FIRE


@pytest.mark.parametrize(
    ("default", "expected"), [("on", FIRE), ("off", TOGGLE_OFF)], ids=["on", "off"]
)
@pytest.mark.parametrize("kind", ["client", "server"])
def test_unlisted_events_follow_the_default_from_any_source(
    default: str, expected: Decision, kind: str
) -> None:
    """collect belongs to listed events: an unlisted event follows the default as before."""
    workflow = Workflow(default=default, events={"E": EventRule(collect="server")})  # type: ignore[arg-type]
    assert decide(workflow, "Other", f"{SHOP}/", kind) == expected  # type: ignore[arg-type]
