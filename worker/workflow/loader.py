"""Workflow TOML to model and back, refusing a malformed file with its line and reason."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from worker.consent import MISSING_POLICIES
from worker.errors import WorkflowError
from worker.workflow.locate import Locator, Where
from worker.workflow.model import (
    ACTIONS,
    CLIENT_TRIGGERS,
    COLLECT_MODES,
    DEFAULT_PAGE_VIEW_EVENT,
    DEFAULTS,
    MATCH_KINDS,
    MAX_SELECTOR_CHARS,
    ClientDefinition,
    ConsentRule,
    EventRule,
    TriggerPath,
    Workflow,
)
from worker.workflow.tomlwrite import key as toml_key
from worker.workflow.tomlwrite import value as toml_value

TOP_KEYS = ("default", "page_view_event", "consent", "events")
CONSENT_KEYS = ("required", "missing")
EVENT_KEYS = (
    "enabled",
    "callback",
    "require_url",
    "collect",
    "trigger_paths",
    "client",
    "object_type_id",
    "consent",
    "consent_missing",
)
_OBJECT_TYPE = re.compile(r"^[1-9][0-9]*$")
PATH_KEYS = ("pattern", "match", "action")
CLIENT_KEYS = ("on", "selector")
# C0 and C1 control characters and DEL: never part of a real selector, and unsafe to echo.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CALLBACK_SHAPE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_TOML_WHERE = re.compile(r"\s*\((?:at line (\d+), column \d+|at end of document)\)$")


def load_workflow_file(path: str | Path) -> Workflow:
    """Read and parse a workflow file; WorkflowError says what is wrong and on which line."""
    return parse_workflow(read_workflow_text(path))


def read_workflow_text(path: str | Path) -> str:
    """The text of a workflow file; WorkflowError when it cannot be read or is not UTF-8."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise WorkflowError(f"cannot read the workflow file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise WorkflowError("the file is not UTF-8 text", line) from None
    return text


def describe_error(path: str | Path, exc: WorkflowError) -> str:
    """``FILE:LINE: reason`` (or ``FILE: reason``), the way editors and compilers point."""
    return f"{path}:{exc.line}: {exc.reason}" if exc.line else f"{path}: {exc.reason}"


def parse_workflow(text: str) -> Workflow:
    """Parse workflow TOML into a Workflow; WorkflowError carries the first problem's line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(str(exc), text) from None
    return _Builder(Locator(text)).workflow(data)


def workflow_from_dict(data: Mapping[str, Any]) -> Workflow:
    """Check and build a Workflow from the plain-data form (parsed TOML or stored JSON)."""
    return _Builder(Locator("")).workflow(data)


def workflow_to_dict(workflow: Workflow) -> dict[str, Any]:
    """The workflow as plain data in the file's shape; ``workflow_from_dict`` reverses it.

    ``collect`` and ``client`` appear only when set (not "any", not empty), so a stored
    workflow that uses neither stays readable by a relay that predates them.
    """
    events: dict[str, Any] = {}
    for name, rule in workflow.events.items():
        spec: dict[str, Any] = {"enabled": rule.enabled}
        if rule.callback is not None:
            spec["callback"] = rule.callback
        spec["require_url"] = rule.require_url
        if rule.collect != "any":
            spec["collect"] = rule.collect
        spec["trigger_paths"] = [
            {"pattern": p.pattern, "match": p.match, "action": p.action} for p in rule.trigger_paths
        ]
        if rule.client:
            spec["client"] = [{"on": c.on, "selector": c.selector} for c in rule.client]
        if rule.object_type_id is not None:
            spec["object_type_id"] = rule.object_type_id
        if rule.consent is not None:
            spec["consent"] = list(rule.consent)
        if rule.consent_missing is not None:
            spec["consent_missing"] = rule.consent_missing
        events[name] = spec
    data: dict[str, Any] = {
        "default": workflow.default,
        "page_view_event": workflow.page_view_event,
    }
    if workflow.consent != ConsentRule():
        data["consent"] = {
            "required": list(workflow.consent.required),
            "missing": workflow.consent.missing,
        }
    data["events"] = events
    return data


def _syntax_error(message: str, text: str) -> WorkflowError:
    found = _TOML_WHERE.search(message)
    if found is None:
        return WorkflowError(f"TOML syntax error: {message}")
    reason = message[: found.start()]
    # "at end of document" has no line number: point at the last line.
    line = int(found.group(1)) if found.group(1) else text.rstrip("\n").count("\n") + 1
    return WorkflowError(f"TOML syntax error: {reason[:1].lower()}{reason[1:]}", line)


class _Builder:
    """Checks the parsed TOML piece by piece and builds the model."""

    def __init__(self, locator: Locator) -> None:
        self._locate = locator

    def fail(self, where: Where, reason: str) -> WorkflowError:
        return WorkflowError(reason, self._locate(where))

    def workflow(self, data: Mapping[str, Any]) -> Workflow:
        self.no_unknown_keys(data, TOP_KEYS, (), "the workflow")
        default = data.get("default", "off")
        if default not in DEFAULTS:
            raise self.fail(("default",), f'default must be "off" or "on", not {_show(default)}')
        page_view = data.get("page_view_event", DEFAULT_PAGE_VIEW_EVENT)
        if not isinstance(page_view, str) or not page_view.strip():
            raise self.fail(
                ("page_view_event",),
                f"page_view_event must be a non-empty string, not {_show(page_view)}",
            )
        events = data.get("events", {})
        if not isinstance(events, dict):
            raise self.fail(("events",), f"events must be a table, not {_show(events)}")
        rules = {name: self.event(name, spec) for name, spec in events.items()}
        return Workflow(cast(Any, default), page_view, rules, self.consent(data.get("consent")))

    def consent(self, spec: Any) -> ConsentRule:
        where: Where = ("consent",)
        if spec is None:
            return ConsentRule()
        if not isinstance(spec, dict):
            raise self.fail(where, f"consent must be a table ([consent]), not {_show(spec)}")
        self.no_unknown_keys(spec, CONSENT_KEYS, where, "[consent]")
        required = self.categories(spec, "required", where, "[consent]")
        missing = self.missing_policy(spec, "missing", where, "[consent]")
        return ConsentRule(required or (), missing or "allow")

    def categories(
        self, spec: Mapping[str, Any], name: str, where: Where, label: str
    ) -> tuple[str, ...] | None:
        if name not in spec:
            return None
        value = spec[name]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(
                (*where, name),
                f"{label}: {name} must be a list of consent category names, not {_show(value)}",
            )
        return tuple(v.strip() for v in value)

    def missing_policy(self, spec: Mapping[str, Any], name: str, where: Where, label: str) -> Any:
        value = spec.get(name)
        if value is not None and value not in MISSING_POLICIES:
            raise self.fail(
                (*where, name), f'{label}: {name} must be "allow" or "deny", not {_show(value)}'
            )
        return value

    def event(self, name: str, spec: Any) -> EventRule:
        where: Where = ("events", name)
        label = f"event {_quote(name)}"
        if not name.strip():
            raise self.fail(where, "an event name must not be empty")
        if not isinstance(spec, dict):
            raise self.fail(where, f"{label} must be a table, not {_show(spec)}")
        self.no_unknown_keys(spec, EVENT_KEYS, where, label)
        enabled = self.boolean(spec, "enabled", True, where, label)
        require_url = self.boolean(spec, "require_url", False, where, label)
        callback = spec.get("callback")
        if callback is not None and (
            not isinstance(callback, str) or not CALLBACK_SHAPE.match(callback)
        ):
            raise self.fail(
                (*where, "callback"),
                f'{label}: callback must look like "package.module:function", '
                f"not {_show(callback)}",
            )
        paths = spec.get("trigger_paths", [])
        if not isinstance(paths, list):
            raise self.fail(
                (*where, "trigger_paths"),
                f"{label}: trigger_paths must be a list of tables "
                f'([[events."{name}".trigger_paths]]), not {_show(paths)}',
            )
        rules = tuple(self.trigger_path(label, where, i, rule) for i, rule in enumerate(paths))
        collect = spec.get("collect", "any")
        if collect not in COLLECT_MODES:
            raise self.fail(
                (*where, "collect"),
                f"{label}: collect must be one of {', '.join(COLLECT_MODES)}, not {_show(collect)}",
            )
        client = spec.get("client", [])
        if not isinstance(client, list):
            raise self.fail(
                (*where, "client"),
                f"{label}: client must be a list of tables "
                f'([[events."{name}".client]]), not {_show(client)}',
            )
        clients = tuple(self.client_definition(label, where, i, c) for i, c in enumerate(client))
        object_type_id = spec.get("object_type_id")
        if object_type_id is not None and (
            not isinstance(object_type_id, str) or not _OBJECT_TYPE.match(object_type_id)
        ):
            raise self.fail(
                (*where, "object_type_id"),
                f'{label}: object_type_id must be a whole number from 1 in quotes ("1"), '
                f"not {_show(object_type_id)}",
            )
        return EventRule(
            enabled,
            callback,
            require_url,
            rules,
            collect,
            clients,
            object_type_id=object_type_id,
            consent=self.categories(spec, "consent", where, label),
            consent_missing=self.missing_policy(spec, "consent_missing", where, label),
        )

    def client_definition(
        self, event_label: str, event_where: Where, index: int, spec: Any
    ) -> ClientDefinition:
        where: Where = (*event_where, "client", index)
        label = f"{event_label}, client definition {index + 1}"
        self.complete_table(spec, CLIENT_KEYS, where, label)
        on, selector = spec["on"], spec["selector"]
        if on not in CLIENT_TRIGGERS:
            raise self.fail(
                (*where, "on"),
                f"{label}: on must be one of {', '.join(CLIENT_TRIGGERS)}, not {_show(on)}",
            )
        if not isinstance(selector, str) or not selector.strip():
            raise self.fail(
                (*where, "selector"),
                f"{label}: selector must be a non-empty string (a CSS selector), "
                f"not {_show(selector)}",
            )
        if len(selector) > MAX_SELECTOR_CHARS:
            raise self.fail(
                (*where, "selector"),
                f"{label}: selector is {len(selector)} characters long; "
                f"the limit is {MAX_SELECTOR_CHARS}",
            )
        if _CONTROL.search(selector):
            raise self.fail(
                (*where, "selector"), f"{label}: selector must not contain control characters"
            )
        return ClientDefinition(on, selector)

    def trigger_path(
        self, event_label: str, event_where: Where, index: int, spec: Any
    ) -> TriggerPath:
        where: Where = (*event_where, "trigger_paths", index)
        label = f"{event_label}, trigger path {index + 1}"
        self.complete_table(spec, PATH_KEYS, where, label)
        pattern, match, action = spec["pattern"], spec["match"], spec["action"]
        if not isinstance(pattern, str) or not pattern:
            raise self.fail(
                (*where, "pattern"),
                f"{label}: pattern must be a non-empty string, not {_show(pattern)}",
            )
        if match not in MATCH_KINDS:
            raise self.fail(
                (*where, "match"),
                f"{label}: match must be one of {', '.join(MATCH_KINDS)}, not {_show(match)}",
            )
        if action not in ACTIONS:
            raise self.fail(
                (*where, "action"),
                f"{label}: action must be one of {', '.join(ACTIONS)}, not {_show(action)}",
            )
        if match == "regex":
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.fail(
                    (*where, "pattern"), f"{label}: invalid regex {_show(pattern)}: {exc}"
                ) from None
        return TriggerPath(pattern, match, action)

    def boolean(
        self, spec: Mapping[str, Any], name: str, default: bool, where: Where, label: str
    ) -> bool:
        value = spec.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(
                (*where, name), f"{label}: {name} must be true or false, not {_show(value)}"
            )
        return value

    def complete_table(self, spec: Any, keys: tuple[str, ...], where: Where, label: str) -> None:
        """A table with exactly ``keys``: not another value, none unknown, none missing."""
        if not isinstance(spec, dict):
            raise self.fail(where, f"{label} must be a table, not {_show(spec)}")
        self.no_unknown_keys(spec, keys, where, label)
        for name in keys:
            if name not in spec:
                raise self.fail(where, f"{label}: {name} is missing")

    def no_unknown_keys(
        self, spec: Mapping[str, Any], allowed: tuple[str, ...], where: Where, label: str
    ) -> None:
        for name in spec:
            if name not in allowed:
                raise self.fail(
                    (*where, name),
                    f"unknown key {_quote(name)} in {label} (expected {', '.join(allowed)})",
                )


def dump_workflow(workflow: Workflow) -> str:
    """The workflow as TOML text that parses back to an equal Workflow."""
    out = [
        "# cio-relay workflow (see DESIGN.md, Workflow)",
        f"default = {toml_value(workflow.default)}",
        f"page_view_event = {toml_value(workflow.page_view_event)}",
    ]
    if workflow.consent != ConsentRule():
        out += [
            "",
            "[consent]",
            f"required = {toml_value(list(workflow.consent.required))}",
            f"missing = {toml_value(workflow.consent.missing)}",
        ]
    for name, rule in workflow.events.items():
        table = f"events.{toml_key(name)}"
        out += ["", f"[{table}]", f"enabled = {toml_value(rule.enabled)}"]
        if rule.callback is not None:
            out.append(f"callback = {toml_value(rule.callback)}")
        if rule.require_url:
            out.append("require_url = true")
        if rule.collect != "any":
            out.append(f"collect = {toml_value(rule.collect)}")
        if rule.object_type_id is not None:
            out.append(f"object_type_id = {toml_value(rule.object_type_id)}")
        if rule.consent is not None:
            out.append(f"consent = {toml_value(list(rule.consent))}")
        if rule.consent_missing is not None:
            out.append(f"consent_missing = {toml_value(rule.consent_missing)}")
        for path in rule.trigger_paths:
            out += [
                "",
                f"[[{table}.trigger_paths]]",
                f"pattern = {toml_value(path.pattern)}",
                f"match = {toml_value(path.match)}",
                f"action = {toml_value(path.action)}",
            ]
        for definition in rule.client:
            out += [
                "",
                f"[[{table}.client]]",
                f"on = {toml_value(definition.on)}",
                f"selector = {toml_value(definition.selector)}",
            ]
    return "\n".join(out) + "\n"


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _show(value: Any) -> str:
    """A short description of a bad value for an error message."""
    if isinstance(value, str):
        text = _quote(value)
        return text if len(text) <= 80 else text[:77] + '..."'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
