"""From raw inbox entries to operations ready to send: parse, normalise, workflow,
callback, identity, mapping. No I/O: the caller fetches what Redis remembers and applies
the outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from worker import spec
from worker.consent import refusal
from worker.errors import CallbackFailed, InvalidEvent, RejectedEvent
from worker.events import Event
from worker.identity import Identity, memories, memory_keys, resolve
from worker.ids import event_ulid
from worker.inbox import Entry
from worker.mapping import Operation, PageNameOverflow, build_operation
from worker.normalize import normalize, parse_json
from worker.outcomes import (
    CALLBACK_DROPPED,
    CALLBACK_ERROR,
    CONSENT_DENIED,
    MISSING_IDENTIFIER,
    SAME_PERSON,
    SOURCE_FILTERED,
    TOO_LARGE,
    UNPROCESSABLE,
    UNSUPPORTED,
    Outcome,
    Status,
)
from worker.workflow.callbacks import apply_callback
from worker.workflow.model import EventRule, Workflow
from worker.workflow.rules import decide

if TYPE_CHECKING:
    from worker.settings import Settings

MemoryKey = tuple[str, str]
# Segment calls the relay does not send: accounted for, not sent (none left today).
UNSUPPORTED_KINDS: tuple[str, ...] = ()
CallbackRunner = Callable[[Event, str], Event | None]


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings the preparation stage needs, as plain values."""

    identify_by: str = "identify_by_email"
    unidentified: str = "anonymous"
    page_overflow: PageNameOverflow = "dead_letter"
    max_event_bytes: int = 32_768

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """The policy the relay's settings give: the drains' and the console's dry run."""
        return cls(
            identify_by=settings.identify_by,
            unidentified=settings.unidentified,
            page_overflow=settings.page_name_overflow,
            max_event_bytes=settings.max_event_bytes,
        )


@dataclass(slots=True)
class Parsed:
    """An entry that parsed into an event."""

    entry: Entry
    event: Event
    event_id: str


@dataclass(slots=True)
class Ready:
    """An entry whose operation is ready to send."""

    entry: Entry
    event: Event
    event_id: str
    identity: Identity
    operation: Operation
    # Identity memories this operation changes (a merge teaches, a deletion forgets: "").
    learned: dict[MemoryKey, str] = field(default_factory=dict)

    def outcome(self, status: str, **kw: object) -> Outcome:
        """An outcome for this entry carrying its event id, name and identifier."""
        return Outcome(
            self.entry.id,
            status,  # type: ignore[arg-type]
            event_id=self.event_id,
            name=self.event.name,
            identifier=self.identity.value,
            **kw,  # type: ignore[arg-type]
        )


@dataclass
class Prepared:
    """The result of preparing a batch: what to send, what is already decided, what to remember."""

    ready: list[Ready] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    memories: dict[MemoryKey, str] = field(default_factory=dict)


def parse_entries(
    entries: Sequence[Entry], workflow: Workflow, policy: Policy
) -> tuple[list[Parsed], list[Outcome]]:
    """Parse and normalise each entry; what cannot be read becomes a dead outcome."""
    parsed: list[Parsed] = []
    dead: list[Outcome] = []
    for entry in entries:
        raw = entry.fields.get(b"event")
        if raw is None:
            dead.append(
                Outcome(entry.id, "dead", "missing_field", "inbox entry has no 'event' field")
            )
            continue
        if len(raw) > policy.max_event_bytes:
            dead.append(
                Outcome(
                    entry.id,
                    "dead",
                    TOO_LARGE,
                    f"event is {len(raw)} bytes; the limit is {policy.max_event_bytes} "
                    "(CIO_MAX_EVENT_BYTES)",
                )
            )
            continue
        try:
            event = normalize(
                parse_json(raw),
                received_at=entry.received_at,
                page_view_event=workflow.page_view_event,
            )
            parsed.append(Parsed(entry, event, event_ulid(event.dedupe_key)))
        except InvalidEvent as exc:
            dead.append(Outcome(entry.id, "dead", exc.reason, exc.detail))
        except Exception as exc:  # one odd entry must never hold up its whole batch
            dead.append(_unprocessable(entry, exc))
    return parsed, dead


def _printable(text: str) -> str:
    """Text that is safe to store as UTF-8 whatever the exception quoted (lone surrogates)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _unprocessable(entry: Entry, exc: Exception, parsed: Parsed | None = None) -> Outcome:
    """The dead outcome of an entry that made a stage fail in a way no rule foresaw."""
    return Outcome(
        entry.id,
        "dead",
        UNPROCESSABLE,
        _printable(f"preparing the event failed: {type(exc).__name__}: {exc}"[:500]),
        event_id=parsed.event_id if parsed else None,
        name=parsed.event.name if parsed else None,
    )


def needed_memories(parsed: Sequence[Parsed]) -> list[MemoryKey]:
    """The remembered identities this batch may need, without duplicates."""
    seen: dict[MemoryKey, None] = {}
    for p in parsed:
        for key in memory_keys(p.event):
            seen[key] = None
        for key in spec.previous_keys(p.event):
            seen[key] = None
    return list(seen)


def route(
    parsed: Sequence[Parsed],
    workflow: Workflow,
    remembered: Mapping[MemoryKey, str],
    policy: Policy,
    run_callback: CallbackRunner = apply_callback,
) -> Prepared:
    """Apply workflow, callback, identity and mapping to each event, in inbox order.

    An identify teaches the batch who an anonymous id or user id is before the events
    after it are resolved, whether or not the identify itself is forwarded.
    """
    result = Prepared()
    known = dict(remembered)
    for p in parsed:
        event = p.event
        try:
            if event.kind == "identify":
                _learn(event, policy.identify_by, known, result.memories)
            outcome, ready = _route_one(p, workflow, known, policy, run_callback)
            if ready is not None and ready.learned:
                known.update(ready.learned)
                result.memories.update(ready.learned)
        except Exception as exc:  # one odd event must never hold up its whole batch
            outcome, ready = _unprocessable(p.entry, exc, p), None
        if ready is not None:
            result.ready.append(ready)
        if outcome is not None:
            result.outcomes.append(outcome)
    return result


def _learn(
    event: Event, identify_by: str, known: dict[MemoryKey, str], learned: dict[MemoryKey, str]
) -> None:
    identity = resolve(event, identify_by, {})
    if identity is None or identity.anonymous:
        return
    for key in memories(event, identity.value):
        known[key] = identity.value
        learned[key] = identity.value


def _route_one(
    p: Parsed,
    workflow: Workflow,
    known: Mapping[MemoryKey, str],
    policy: Policy,
    run_callback: CallbackRunner,
) -> tuple[Outcome | None, Ready | None]:
    event = p.event

    def settled(
        status: Status, reason: str, detail: str = "", identifier: str | None = None
    ) -> tuple[Outcome, None]:
        return Outcome(
            p.entry.id,
            status,
            reason,
            detail,
            event_id=p.event_id,
            name=event.name,
            identifier=identifier,
        ), None

    kind = p.entry.source_kind
    decision = decide(workflow, event.name, event.url, kind)
    if not decision.fire:
        reason = decision.reason or "toggle_off"
        detail = _filtered_detail(workflow, event.name, kind) if reason == SOURCE_FILTERED else ""
        return settled("skipped", reason, detail)
    rule = workflow.events.get(event.name)
    refused = _consent_refusal(event, workflow, rule)
    if refused is not None:
        return settled("skipped", CONSENT_DENIED, refused)
    if event.kind in UNSUPPORTED_KINDS:
        return settled("skipped", UNSUPPORTED, f"{event.kind} calls are not sent to Customer.io")
    if rule is not None and rule.callback:
        try:
            changed = run_callback(event, rule.callback)
        except CallbackFailed as exc:
            return settled("dead", CALLBACK_ERROR, exc.last_line)
        if changed is None:
            return settled("skipped", CALLBACK_DROPPED)
        event = changed
    action = spec.spec_action(event)
    if action is not None:
        try:
            ready = _spec_ready(p, event, action, workflow, known, policy)
        except RejectedEvent as exc:
            status: Status = "skipped" if exc.reason == SAME_PERSON else "dead"
            return settled(status, exc.reason, exc.detail)
        if ready is not None:
            return None, ready
    identity = resolve(event, policy.identify_by, known)
    if identity is None or (identity.anonymous and policy.unidentified == "dead_letter"):
        return settled(
            "dead",
            MISSING_IDENTIFIER,
            f"no {policy.identify_by} on the event or remembered for its ids",
        )
    try:
        op = build_operation(
            event,
            identity,
            p.event_id,
            identify_by=policy.identify_by,
            page_overflow=policy.page_overflow,
        )
    except RejectedEvent as exc:
        return settled("dead", exc.reason, exc.detail, identity.value)
    return None, Ready(p.entry, event, p.event_id, identity, op)


def _consent_refusal(event: Event, workflow: Workflow, rule: EventRule | None) -> str | None:
    """Why the consent the event carries does not cover what the workflow requires.

    Privacy requests (User Deleted, ...) are not held back by the workflow-wide
    ``[consent]``, only by an event's own ``consent``: a deletion must go through.
    """
    required, missing = workflow.consent.for_event(rule)
    if not required:
        return None
    if (rule is None or rule.consent is None) and spec.spec_action(event) in spec.PRIVACY_ACTIONS:
        return None
    return refusal(event.consent, required, missing)


def _spec_ready(
    p: Parsed,
    event: Event,
    action: str,
    workflow: Workflow,
    known: Mapping[MemoryKey, str],
    policy: Policy,
) -> Ready | None:
    """The operation for a group call or a spec event; RejectedEvent when it cannot be
    made, None when the event goes as a plain one after all (an anonymous device event:
    Customer.io keeps no device for an anonymous person)."""
    rule = workflow.events.get(event.name)
    object_type = (rule.object_type_id if rule else None) or spec.DEFAULT_OBJECT_TYPE
    person = spec.person_of(event, policy.identify_by, known)
    if action == "object_identify":
        anonymous = None if person is not None else event.anonymous_id
        if person is None and policy.unidentified == "dead_letter":
            raise RejectedEvent(
                MISSING_IDENTIFIER,
                f"no {policy.identify_by} on the group call or remembered for its ids",
            )
        op = spec.object_identify(event, person, anonymous, object_type)
        label = person.shown if person else anonymous or f"object {event.group_id}"
        return Ready(p.entry, event, p.event_id, Identity(label, anonymous=person is None), op)
    if action == "object_delete":
        op = spec.object_delete(event, object_type)
        return Ready(p.entry, event, p.event_id, Identity(f"object {event.group_id}", False), op)
    if person is None and action in spec.DEVICE_ACTIONS:
        return None
    if person is None:
        raise RejectedEvent(
            MISSING_IDENTIFIER, f"no {policy.identify_by} on the event or remembered for its ids"
        )
    who = Identity(person.shown, anonymous=False)
    if action == "relationship_delete":
        return Ready(
            p.entry, event, p.event_id, who, spec.relationship_delete(event, person, object_type)
        )
    if action == "merge":
        secondary = spec.merged_away(event, policy.identify_by, known)
        if secondary.identifiers == person.identifiers:
            raise RejectedEvent(SAME_PERSON, f"{person.shown} is already that person")
        learned = spec.merge_memories(event, person, known)
        return Ready(p.entry, event, p.event_id, who, spec.merge(person, secondary), learned)
    if action == "add_device":
        return Ready(p.entry, event, p.event_id, who, spec.add_device(event, person))
    if action == "delete_device":
        return Ready(p.entry, event, p.event_id, who, spec.delete_device(event, person))
    if action in spec.PRIVACY_ACTIONS:
        forget = spec.forgotten(event, person, known) if action in spec.FORGETTING_ACTIONS else {}
        op = spec.privacy_request(action, person)
        return Ready(p.entry, event, p.event_id, who, op, forget)
    raise ValueError(f"no mapping for {action}")


def _filtered_detail(workflow: Workflow, name: str, kind: str) -> str:
    """Why a copy was skipped as source_filtered, for ``cio-relay activity``."""
    rule = workflow.events.get(name)
    collect = rule.collect if rule is not None else "any"
    return f'collect = "{collect}" and this copy came from a {kind} source'
