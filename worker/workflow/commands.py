"""``cio-relay workflow show|apply|enable|disable|export``: read and change the live workflow."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker import redisconn
from worker.cli.output import emit_json, emit_table, fail
from worker.errors import CallbackFailed, WorkflowError
from worker.keys import Keys
from worker.settings import get_settings
from worker.workflow.callbacks import load_callback
from worker.workflow.loader import (
    describe_error,
    dump_workflow,
    parse_workflow,
    read_workflow_text,
)
from worker.workflow.locate import Locator
from worker.workflow.model import ClientDefinition, TriggerPath, Workflow
from worker.workflow.store import WorkflowStore, cli_author

TABLE_COLUMNS = (
    "name",
    "enabled",
    "collect",
    "callback",
    "require_url",
    "fire",
    "dont_fire",
    "client",
)


def add_parser(subparsers: Any) -> None:
    """Register ``cio-relay workflow`` and its subcommands."""
    parser = subparsers.add_parser(
        "workflow",
        help="show or change the live workflow (toggles, sources, trigger paths, callbacks)",
        description="Show or change the workflow every replica applies, without a restart.",
    )
    commands = parser.add_subparsers(dest="workflow_command", required=True, metavar="ACTION")

    show = commands.add_parser("show", help="print the live workflow")
    _json_flag(show)
    show.set_defaults(func=cmd_show)

    apply = commands.add_parser("apply", help="check a workflow file and make it the live workflow")
    apply.add_argument("file", metavar="FILE", help="workflow TOML file")
    apply.add_argument("--check", action="store_true", help="only check the file; change nothing")
    _json_flag(apply)
    apply.set_defaults(func=cmd_apply)

    for name, enabled in (("enable", True), ("disable", False)):
        toggle = commands.add_parser(name, help=f"{name} one event in the live workflow")
        toggle.add_argument("name", metavar="NAME", help='event name, e.g. "Added to cart"')
        _json_flag(toggle)
        toggle.set_defaults(func=cmd_toggle, enabled=enabled)

    export = commands.add_parser("export", help="print the live workflow as TOML")
    export.add_argument("file", metavar="FILE", nargs="?", help="write here instead of stdout")
    export.set_defaults(func=cmd_export)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def open_store() -> WorkflowStore:
    """The live workflow store for the configured Redis and prefix."""
    settings = get_settings()
    return WorkflowStore(redisconn.connect(settings), Keys(settings.redis_prefix))


def cmd_show(args: argparse.Namespace) -> int:
    """Print the default, the page view event and one row per listed event.

    The table's ``client`` column lists the no-code definitions as ``on:selector``; the
    JSON rows carry them as objects, and ``collect`` ("any", "server" or "client") too.
    """
    store = open_store()
    workflow, info = store.get(), store.info()
    header = {
        "default": workflow.default,
        "page_view_event": workflow.page_view_event,
        "consent": {
            "required": list(workflow.consent.required),
            "missing": workflow.consent.missing,
        },
        "version": info.version,
        "updated_at": info.updated_at,
        "events": len(workflow.events),
    }
    rows = [_event_row(name, workflow) for name in workflow.events]
    if args.json:
        emit_json(header)
        for row in rows:
            emit_json(row)
        return 0
    out = sys.stdout
    if info.version == 0:
        out.write("no workflow stored yet: every event is off until one is applied\n")
    else:
        out.write(f"version {info.version}, changed {_when(info.updated_at)}\n")
    out.write(f"default: {workflow.default} (events not listed)\n")
    out.write(f"page view event: {workflow.page_view_event}\n")
    required = ", ".join(workflow.consent.required) or "none"
    out.write(f"consent required: {required} (missing: {workflow.consent.missing})\n")
    if rows:
        out.write("\n")
        emit_table([_table_row(row) for row in rows], TABLE_COLUMNS, out)
    return 0


def _event_row(name: str, workflow: Workflow) -> dict[str, Any]:
    rule = workflow.events[name]
    return {
        "name": name,
        "enabled": rule.enabled,
        "collect": rule.collect,
        "callback": rule.callback,
        "require_url": rule.require_url,
        "fire": len(rule.fire_rules),
        "dont_fire": len(rule.dont_fire_rules),
        "trigger_paths": [_path_dict(p) for p in rule.trigger_paths],
        "client": [_client_dict(c) for c in rule.client],
        **({"object_type_id": rule.object_type_id} if rule.object_type_id else {}),
        **({"consent": list(rule.consent)} if rule.consent is not None else {}),
        **({"consent_missing": rule.consent_missing} if rule.consent_missing else {}),
    }


def _path_dict(path: TriggerPath) -> dict[str, str]:
    return {"pattern": path.pattern, "match": path.match, "action": path.action}


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    """A JSON row made readable in a table: client definitions as ``on:selector``."""
    client = ", ".join(f"{c['on']}:{c['selector']}" for c in row["client"])
    return {**row, "client": client or None}


def _client_dict(definition: ClientDefinition) -> dict[str, str]:
    return {"on": definition.on, "selector": definition.selector}


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "at an unknown time"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_apply(args: argparse.Namespace) -> int:
    """Check a file (syntax, rules, callbacks import) and replace the live workflow with it."""
    where = args.file
    try:
        text = read_workflow_text(args.file)
        workflow = parse_workflow(text)
    except WorkflowError as exc:
        return fail(describe_error(where, exc))
    locate = Locator(text)
    for name, rule in workflow.events.items():
        if rule.callback is None:
            continue
        try:
            load_callback(rule.callback)
        except CallbackFailed as exc:
            line = locate(("events", name, "callback"))
            return fail(describe_error(where, WorkflowError(exc.last_line, line)))
    report: dict[str, Any] = {
        "file": str(args.file),
        "events": len(workflow.events),
        "default": workflow.default,
        "applied": not args.check,
        "version": None,
    }
    if not args.check:
        report["version"] = open_store().replace(
            workflow, author=cli_author(), note=f"applied {Path(args.file).name}"
        )
    if args.json:
        emit_json(report)
    elif args.check:
        print(f"{where}: ok ({len(workflow.events)} events, default {workflow.default})")
    else:
        print(
            f"applied {where}: {len(workflow.events)} events, default {workflow.default}, "
            f"version {report['version']}"
        )
    return 0


def cmd_toggle(args: argparse.Namespace) -> int:
    """Switch one event on or off in the live workflow."""
    name = args.name
    if not name.strip():
        return fail("the event name must not be empty")
    store = open_store()
    listed = name in store.get().events
    store.set_enabled(name, args.enabled, author=cli_author())
    version = store.version()
    state = "enabled" if args.enabled else "disabled"
    if args.json:
        emit_json({"name": name, "enabled": args.enabled, "added": not listed, "version": version})
    else:
        note = " (it was not listed; added with no trigger paths)" if not listed else ""
        print(f"{name}: {state}{note}, version {version}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Print the live workflow as TOML, or write it to FILE."""
    text = dump_workflow(open_store().get())
    if args.file is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.file).write_text(text, encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot write {args.file}: {exc.strerror or exc}")
    print(f"wrote {args.file}")
    return 0
