"""The workflow decision for one event: toggle, source kind, then URL trigger paths. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from worker.outcomes import PATH_BLOCKED, SOURCE_FILTERED, TOGGLE_OFF
from worker.workflow.model import SourceKind, TriggerPath, Workflow


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to send an event; when not, ``reason`` is ``toggle_off``, ``source_filtered``
    or ``path_blocked``."""

    fire: bool
    reason: str | None = None


FIRE = Decision(True)
OFF = Decision(False, TOGGLE_OFF)
BLOCKED = Decision(False, PATH_BLOCKED)
FILTERED = Decision(False, SOURCE_FILTERED)


def decide(
    workflow: Workflow, name: str, url: str | None, source_kind: SourceKind = "server"
) -> Decision:
    """Apply the event's toggle, ``collect`` and trigger paths (or the default) to one event.

    ``source_kind`` is the kind of source the copy came from; a rule with ``collect =
    "server"`` skips client copies and ``collect = "client"`` server copies. Events the
    workflow does not list follow the default whatever their source.
    """
    rule = workflow.events.get(name)
    if rule is None:
        return FIRE if workflow.default == "on" else OFF
    if not rule.enabled:
        return OFF
    if not rule.accepts(source_kind):
        return FILTERED
    if not url:
        return BLOCKED if rule.require_url else FIRE
    if not rule.trigger_paths:
        return FIRE
    target = _Target(url)
    if any(matches(r, target) for r in rule.dont_fire_rules):
        return BLOCKED
    if rule.fire_rules and not any(matches(r, target) for r in rule.fire_rules):
        return BLOCKED
    return FIRE


def url_path(url: str) -> str:
    """The path part of a URL, or the URL itself when it is already a bare path."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # Malformed (e.g. an unclosed IPv6 bracket): cut at the query or fragment instead.
        return url.split("#", 1)[0].split("?", 1)[0]
    if not parts.path and parts.netloc:
        return "/"
    return parts.path


class _Target:
    """A URL plus its path, split only when a path pattern asks for it."""

    __slots__ = ("_path", "url")

    def __init__(self, url: str) -> None:
        self.url = url
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            self._path = url_path(self.url)
        return self._path


def matches(rule: TriggerPath, target: _Target | str) -> bool:
    """Whether one trigger path matches a URL (path patterns look at the path only)."""
    if isinstance(target, str):
        target = _Target(target)
    subject = target.path if rule.on_path else target.url
    kind = rule.match
    if kind == "exact":
        return subject == rule.pattern
    if kind == "prefix":
        return subject.startswith(rule.pattern)
    if kind == "contains":
        return rule.pattern in subject
    assert rule.compiled is not None
    if kind == "glob":
        return rule.compiled.match(subject) is not None
    return rule.compiled.search(subject) is not None
