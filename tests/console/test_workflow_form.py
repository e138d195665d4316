"""The workflow editor's pure parts: catalogue merge, toggles, rule checks, URL verdicts."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from worker.catalogue import OTHER, Seen
from worker.console.workflow_form import (
    apply_toggles,
    catalogue_rows,
    event_spec,
    explain_url,
    with_event,
)
from worker.errors import WorkflowError
from worker.workflow.loader import parse_workflow

WORKFLOW = parse_workflow(
    """
default = "off"
[events."Listed"]
enabled = true
collect = "server"
trigger_paths = [
  { pattern = "/checkout/*", match = "glob", action = "dont_fire" },
  { pattern = "shop.example", match = "contains", action = "fire" },
]
[events."Off"]
enabled = false
"""
)


def test_catalogue_merges_listed_and_seen_names() -> None:
    seen = {
        "Seen only": Seen("Seen only", 5, 1.0, "client"),
        "Listed": Seen("Listed", 2, 2.0, "server"),
        OTHER: Seen(OTHER, 9, 3.0, "both"),
    }
    rows = catalogue_rows(WORKFLOW, seen)
    assert [(r.name, r.listed, r.enabled) for r in rows] == [
        ("Listed", True, True),
        ("Off", True, False),
        ("Seen only", False, False),
    ]
    assert rows[0].paths == 2 and rows[0].seen == seen["Listed"]


def test_toggles_touch_only_changed_events() -> None:
    changed, notes = apply_toggles(WORKFLOW, ["Listed", "Off", "Seen only"], {"Off"})
    assert notes == ["Listed: off", "Off: on"]
    assert "Seen only" not in changed.events
    assert changed.events["Listed"].trigger_paths == WORKFLOW.events["Listed"].trigger_paths


def test_event_spec_keeps_what_the_form_does_not_edit() -> None:
    form = FormData(
        [
            ("enabled", "on"),
            ("collect", "client"),
            ("callback", " "),
            ("pattern", "/a"),
            ("match", "prefix"),
            ("action", "fire"),
            ("pattern", ""),
            ("match", "exact"),
            ("action", "fire"),
        ]
    )
    current = {"enabled": False, "callback": "x:y", "client": [{"on": "click", "selector": "a"}]}
    spec = event_spec(form, current)
    assert spec == {
        "enabled": True,
        "require_url": False,
        "collect": "client",
        "client": [{"on": "click", "selector": "a"}],
        "trigger_paths": [{"pattern": "/a", "match": "prefix", "action": "fire"}],
    }


def test_with_event_checks_like_the_loader_and_the_cli() -> None:
    bad = {
        "enabled": True,
        "trigger_paths": [{"pattern": "/x", "match": "fuzzy", "action": "fire"}],
    }
    with pytest.raises(WorkflowError, match="match"):
        with_event(WORKFLOW, "Listed", bad)
    with pytest.raises(WorkflowError, match="callback"):
        with_event(WORKFLOW, "Listed", {"enabled": True, "callback": "no.such.module:f"})
    ok = with_event(WORKFLOW, "New", {"enabled": True, "trigger_paths": []})
    assert ok.events["New"].enabled and ok.events["Listed"] == WORKFLOW.events["Listed"]


@pytest.mark.parametrize(
    ("name", "url", "kind", "fire", "rule"),
    [
        ("Listed", "https://shop.example/checkout/1", "server", False, "rule 1: Don't Fire glob"),
        ("Listed", "https://shop.example/cart", "server", True, "rule 2: Fire contains"),
        ("Listed", "https://other.example/cart", "server", False, "no Fire path matches"),
        ("Listed", "https://shop.example/cart", "client", False, "client copies are skipped"),
        ("Off", "https://shop.example/", "server", False, "switched off"),
        ("Unknown", "https://shop.example/", "server", False, "default (off) applies"),
    ],
)
def test_explain_url_agrees_with_the_relays_decision(
    name: str, url: str, kind: str, fire: bool, rule: str
) -> None:
    verdict = explain_url(WORKFLOW, name, url, kind)
    assert verdict.fire is fire
    assert rule in verdict.rule
