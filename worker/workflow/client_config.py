"""What the browser tracker is told about the live workflow (``GET /v1/config``). Pure.

The browser applies trigger paths as a courtesy, to avoid sending what would be skipped;
the relay applies every rule again (toggle, ``collect``, trigger paths, callbacks) to
whatever arrives, so a stale, altered or ignored config can never let an event through.
"""

from __future__ import annotations

from typing import Any

from worker.workflow.model import EventRule, Workflow


def client_config(workflow: Workflow) -> dict[str, Any]:
    """The JSON object for ``/v1/config``: page view name, default and browser-side events.

    ``events`` lists only enabled events whose ``collect`` is not "server", each with its
    trigger paths (pattern, match, action; Python fnmatch/re syntax, a pattern starting
    with "/" matching the URL's path, otherwise the whole URL), ``require_url`` and its
    no-code ``client`` definitions (on, selector). ``default`` is "on" or "off": what the
    relay does with events the workflow does not list.
    """
    return {
        "pageViewEvent": workflow.page_view_event,
        "default": workflow.default,
        "events": {
            name: _event(rule)
            for name, rule in workflow.events.items()
            if rule.enabled and rule.collect != "server"
        },
    }


def _event(rule: EventRule) -> dict[str, Any]:
    return {
        "trigger_paths": [
            {"pattern": p.pattern, "match": p.match, "action": p.action} for p in rule.trigger_paths
        ],
        "require_url": rule.require_url,
        "client": [{"on": c.on, "selector": c.selector} for c in rule.client],
    }
