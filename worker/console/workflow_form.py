"""The workflow editor's forms as data: the catalogue merged with the workflow, toggles and
one event's rule read from a form, checked by the loader, and a URL explained by the
workflow's own rules. Pure functions; the page module does the I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from worker.catalogue import OTHER, Seen
from worker.errors import CallbackFailed, WorkflowError
from worker.workflow import rules
from worker.workflow.callbacks import load_callback
from worker.workflow.loader import workflow_from_dict, workflow_to_dict
from worker.workflow.model import (
    ACTIONS,
    COLLECT_MODES,
    MATCH_KINDS,
    SourceKind,
    TriggerPath,
    Workflow,
)

ACTION_LABELS = {"fire": "Fire", "dont_fire": "Don't Fire"}
COLLECT_LABELS = {
    "any": "Any source",
    "server": "Server sources only",
    "client": "Browser (client) sources only",
}
REASON_TEXT = {
    rules.TOGGLE_OFF: "the event is switched off",
    rules.SOURCE_FILTERED: "its collect mode refuses this kind of source",
    rules.PATH_BLOCKED: "a trigger path suppresses it",
}


@dataclass(frozen=True, slots=True)
class CatalogueRow:
    """One event on the workflow page: its rule (if listed) and what the relay saw of it."""

    name: str
    listed: bool
    enabled: bool
    collect: str
    paths: int
    callback: str | None
    seen: Seen | None


def catalogue_names(workflow: Workflow, seen: Mapping[str, Seen]) -> list[str]:
    """Configured events merged with every name seen: listed first, then by count."""
    listed = sorted(workflow.events, key=lambda n: (-(seen[n].count if n in seen else 0), n))
    others = sorted(
        (s for n, s in seen.items() if n not in workflow.events and n != OTHER),
        key=lambda s: (-s.count, s.name),
    )
    return [*listed, *(s.name for s in others)]


def catalogue_row(workflow: Workflow, seen: Mapping[str, Seen], name: str) -> CatalogueRow:
    """One event's row: its rule when listed (else the default) and what was seen."""
    rule = workflow.events.get(name)
    return CatalogueRow(
        name=name,
        listed=rule is not None,
        enabled=rule.enabled if rule else workflow.default == "on",
        collect=rule.collect if rule else "any",
        paths=len(rule.trigger_paths) if rule else 0,
        callback=rule.callback if rule else None,
        seen=seen.get(name),
    )


def catalogue_rows(workflow: Workflow, seen: Mapping[str, Seen]) -> list[CatalogueRow]:
    """Every row of the catalogue, in ``catalogue_names`` order."""
    return [catalogue_row(workflow, seen, n) for n in catalogue_names(workflow, seen)]


def apply_toggles(
    workflow: Workflow, shown: Iterable[str], on: set[str]
) -> tuple[Workflow, list[str]]:
    """The workflow with each shown event switched as the form says; only the events
    whose state changes are touched. Returns it and the changes as sentences."""
    changes = []
    default_on = workflow.default == "on"
    for name in dict.fromkeys(shown):
        rule = workflow.events.get(name)
        current = rule.enabled if rule else default_on
        wanted = name in on
        if wanted != current:
            workflow = workflow.with_enabled(name, wanted)
            changes.append(f"{name}: {'on' if wanted else 'off'}")
    return workflow, changes


def form_paths(form: Any) -> list[dict[str, str]]:
    """The trigger-path rows of an event form (fields ``pattern``, ``match``, ``action``
    repeated once per row, in order); blank rows are dropped."""
    patterns = form.getlist("pattern")
    matches = form.getlist("match")
    actions = form.getlist("action")
    rows = []
    for i, pattern in enumerate(patterns):
        rows.append(
            {
                "pattern": str(pattern),
                "match": str(matches[i]) if i < len(matches) else "exact",
                "action": str(actions[i]) if i < len(actions) else "fire",
            }
        )
    return rows


def event_spec(form: Any, current: Mapping[str, Any] | None) -> dict[str, Any]:
    """One event's rule in the file's shape from the editor form, keeping what the form
    does not edit (client definitions, consent, object type) from ``current``."""
    spec = dict(current or {})
    spec["enabled"] = form.get("enabled") == "on"
    spec["require_url"] = form.get("require_url") == "on"
    spec["collect"] = str(form.get("collect") or "any")
    callback = str(form.get("callback") or "").strip()
    if callback:
        spec["callback"] = callback
    else:
        spec.pop("callback", None)
    spec["trigger_paths"] = [p for p in form_paths(form) if p["pattern"].strip()]
    return spec


def with_event(workflow: Workflow, name: str, spec: Mapping[str, Any]) -> Workflow:
    """The workflow with one event's rule replaced, checked exactly as ``cio-relay
    workflow apply`` checks a file (the loader, then the callback import). Raises
    WorkflowError with the loader's text when it is invalid."""
    data = workflow_to_dict(workflow)
    data["events"] = {**data["events"], name: dict(spec)}
    changed = workflow_from_dict(data)
    callback = changed.events[name].callback
    if callback is not None:
        try:
            load_callback(callback)
        except CallbackFailed as exc:
            raise WorkflowError(f"events.{name}.callback: {exc.last_line}") from None
    return changed


@dataclass(frozen=True, slots=True)
class UrlVerdict:
    """What the workflow does with an event at a URL, and which rule decided it."""

    fire: bool
    reason: str | None
    rule: str


def explain_url(workflow: Workflow, name: str, url: str, source_kind: str) -> UrlVerdict:
    """The decision of ``rules.decide`` for this event at ``url`` and the rule behind it."""
    kind: SourceKind = "client" if source_kind == "client" else "server"
    decision = rules.decide(workflow, name, url or None, kind)
    rule = workflow.events.get(name)
    if rule is None:
        why = f"the event is not listed, so the default ({workflow.default}) applies"
    elif decision.reason == rules.TOGGLE_OFF:
        why = "the event is switched off"
    elif decision.reason == rules.SOURCE_FILTERED:
        why = f"collect is {rule.collect!r}, so {kind} copies are skipped"
    elif not url:
        why = "no URL: require URL is " + ("on" if rule.require_url else "off")
    elif not rule.trigger_paths:
        why = "no trigger paths: every URL fires"
    else:
        why = _path_reason(rule.trigger_paths, url, decision.fire)
    return UrlVerdict(decision.fire, decision.reason, why)


def _path_reason(paths: tuple[TriggerPath, ...], url: str, fire: bool) -> str:
    for i, path in enumerate(paths, 1):
        if path.action == "dont_fire" and rules.matches(path, url):
            return f"rule {i}: Don't Fire {path.match} {path.pattern!r} matches"
    if not fire:
        return "no Fire path matches this URL"
    for i, path in enumerate(paths, 1):
        if path.action == "fire" and rules.matches(path, url):
            return f"rule {i}: Fire {path.match} {path.pattern!r} matches"
    return "no Don't Fire path matches this URL"


CHOICES = {"match": MATCH_KINDS, "action": ACTIONS, "collect": COLLECT_MODES}
