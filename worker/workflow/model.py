"""The workflow as immutable data: a global default plus one rule per event name."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

MatchKind = Literal["exact", "prefix", "contains", "glob", "regex"]
Action = Literal["fire", "dont_fire"]
Default = Literal["off", "on"]
Collect = Literal["any", "server", "client"]
SourceKind = Literal["client", "server"]
ClientTrigger = Literal["click", "submit"]
MissingConsent = Literal["allow", "deny"]

MATCH_KINDS: tuple[str, ...] = ("exact", "prefix", "contains", "glob", "regex")
ACTIONS: tuple[str, ...] = ("fire", "dont_fire")
DEFAULTS: tuple[str, ...] = ("off", "on")
COLLECT_MODES: tuple[str, ...] = ("any", "server", "client")
CLIENT_TRIGGERS: tuple[str, ...] = ("click", "submit")
MAX_SELECTOR_CHARS = 500
DEFAULT_PAGE_VIEW_EVENT = "Page viewed"


@dataclass(frozen=True, slots=True)
class TriggerPath:
    """One URL rule; a pattern starting with "/" is matched against the URL's path only."""

    pattern: str
    match: MatchKind
    action: Action
    # Globs and regexes are compiled once here, because a workflow serves many batches.
    compiled: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.match == "regex":
            object.__setattr__(self, "compiled", re.compile(self.pattern))
        elif self.match == "glob":
            object.__setattr__(self, "compiled", re.compile(fnmatch.translate(self.pattern)))

    @property
    def on_path(self) -> bool:
        """Whether the pattern applies to the URL's path rather than the whole URL."""
        return self.pattern.startswith("/")


@dataclass(frozen=True, slots=True)
class ClientDefinition:
    """A no-code browser event: the tracker sends the event when ``selector`` gets ``on``.

    The selector is a CSS selector kept opaque here: only the browser interprets it.
    """

    on: ClientTrigger
    selector: str


@dataclass(frozen=True, slots=True)
class EventRule:
    """What the workflow does with one event name.

    ``collect`` says which kind of source may send it ("any", "server" or "client"), the
    seed's per-event server-side / client-side choice; ``client`` lists its no-code
    browser definitions. ``object_type_id`` files a group call's object (and the object
    of ``Object Deleted`` / ``Relationship Deleted``) under this type when the event does
    not say; None means Customer.io's first type, "1". ``consent`` and ``consent_missing``
    replace the workflow's ``[consent]`` ``required`` and ``missing`` for this event.
    """

    enabled: bool = True
    callback: str | None = None
    require_url: bool = False
    trigger_paths: tuple[TriggerPath, ...] = ()
    collect: Collect = "any"
    client: tuple[ClientDefinition, ...] = ()
    object_type_id: str | None = None
    # Overrides of the workflow's [consent] for this event; None keeps the workflow's.
    consent: tuple[str, ...] | None = None
    consent_missing: MissingConsent | None = None
    # Split once by action so that deciding an event does no filtering.
    fire_rules: tuple[TriggerPath, ...] = field(default=(), init=False, repr=False, compare=False)
    dont_fire_rules: tuple[TriggerPath, ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        paths = tuple(self.trigger_paths)
        object.__setattr__(self, "trigger_paths", paths)
        object.__setattr__(self, "client", tuple(self.client))
        if self.consent is not None:
            object.__setattr__(self, "consent", tuple(self.consent))
        object.__setattr__(self, "fire_rules", tuple(r for r in paths if r.action == "fire"))
        object.__setattr__(
            self, "dont_fire_rules", tuple(r for r in paths if r.action == "dont_fire")
        )

    def accepts(self, source_kind: SourceKind) -> bool:
        """Whether a copy from this kind of source may be sent (``collect`` allows it)."""
        return self.collect == "any" or self.collect == source_kind


@dataclass(frozen=True, slots=True)
class ConsentRule:
    """The workflow's ``[consent]``: the categories every event needs granted, and what a
    category the sender said nothing about counts as."""

    required: tuple[str, ...] = ()
    missing: MissingConsent = "allow"

    def __post_init__(self) -> None:
        object.__setattr__(self, "required", tuple(self.required))

    def for_event(self, rule: EventRule | None) -> tuple[tuple[str, ...], MissingConsent]:
        """The required categories and missing policy in force for one event."""
        if rule is None:
            return self.required, self.missing
        required = self.required if rule.consent is None else rule.consent
        return required, rule.consent_missing or self.missing


@dataclass(frozen=True, slots=True)
class Workflow:
    """The whole workflow; ``events`` is a read-only mapping from event name to its rule."""

    default: Default = "off"
    page_view_event: str = DEFAULT_PAGE_VIEW_EVENT
    events: Mapping[str, EventRule] = field(default_factory=dict)
    consent: ConsentRule = field(default_factory=ConsentRule)

    def __post_init__(self) -> None:
        object.__setattr__(self, "events", MappingProxyType(dict(self.events)))

    def with_enabled(self, name: str, enabled: bool) -> Workflow:
        """A copy with one event switched on or off; an unlisted event gets a bare rule."""
        events = dict(self.events)
        events[name] = replace(events.get(name, EventRule()), enabled=enabled)
        return replace(self, events=events)
