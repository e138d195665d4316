"""Tests for preparing inbox entries: parsing, workflow, callbacks, identity, mapping."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from worker.errors import CallbackFailed
from worker.events import Event
from worker.inbox import Entry
from worker.prepare import Parsed, Policy, needed_memories, parse_entries, route
from worker.workflow.loader import parse_workflow
from worker.workflow.model import Workflow

WORKFLOW = parse_workflow(
    """\
default = "on"

[events.Off]
enabled = false

[events."Checkout step"]
enabled = true
[[events."Checkout step".trigger_paths]]
pattern = "/admin/*"
match = "glob"
action = "dont_fire"

[events.Shaped]
enabled = true
callback = "shop.cb:shape"

[events."Order Completed"]
collect = "server"

[events."Button clicked"]
collect = "client"
"""
)
POLICY = Policy()
TS = "2023-11-14T22:00:00Z"
ENTRY_MS = 1_700_000_000_000


def _entry(n: int, raw: Any) -> Entry:
    data = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    return Entry(id=f"{ENTRY_MS + n}-0", fields={b"event": data})


def _track(name: str = "Added to cart", **kw: Any) -> dict[str, Any]:
    return {"type": "track", "event": name, "timestamp": TS, "messageId": name, **kw}


def _parse(*raws: Any, workflow: Workflow = WORKFLOW, policy: Policy = POLICY) -> list[Parsed]:
    parsed, dead = parse_entries([_entry(i, r) for i, r in enumerate(raws)], workflow, policy)
    assert dead == []
    return parsed


def _route(*raws: Any, policy: Policy = POLICY, **kw: Any) -> Any:
    return route(_parse(*raws, policy=policy), WORKFLOW, kw.pop("remembered", {}), policy, **kw)


def _single_outcome(*raws: Any, **kw: Any) -> tuple[str, str | None]:
    prepared = _route(*raws, **kw)
    assert prepared.ready == []
    [outcome] = prepared.outcomes
    return outcome.status, outcome.reason


EMAIL_TRAITS = {"email": "ada@example.com"}


def test_parse_keeps_entry_and_gives_event_id() -> None:
    """A readable entry becomes a Parsed carrying its entry and a stable event id."""
    [p] = _parse(_track())
    assert (p.entry.id, p.event.kind, p.event.name) == (f"{ENTRY_MS}-0", "track", "Added to cart")
    assert p.event_id == _parse(_track())[0].event_id


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({b"event": b"{not json"}, "invalid_json"),
        ({b"other": b"{}"}, "missing_field"),
        ({b"event": json.dumps(_track(pad="x" * 200)).encode()}, "too_large"),
    ],
    ids=["invalid-json", "missing-field", "too-large"],
)
def test_parse_dead_letters_unreadable(fields: dict[bytes, bytes], reason: str) -> None:
    """Entries that cannot be read become dead outcomes with a reason, not exceptions."""
    entry = Entry(id="1-0", fields=fields)
    parsed, dead = parse_entries([entry], WORKFLOW, replace(POLICY, max_event_bytes=150))
    assert parsed == []
    assert [(o.entry_id, o.status, o.reason) for o in dead] == [("1-0", "dead", reason)]


def test_parse_keeps_good_entries_next_to_bad() -> None:
    """One bad entry does not stop the others from parsing."""
    entries = [_entry(0, _track()), Entry("2-0", {b"event": b"[]"}), _entry(2, _track("B"))]
    parsed, dead = parse_entries(entries, WORKFLOW, POLICY)
    assert [p.event.name for p in parsed] == ["Added to cart", "B"]
    assert [o.entry_id for o in dead] == ["2-0"]


def test_parse_dead_letters_an_entry_that_breaks_a_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception no rule foresaw dead-letters that entry as unprocessable, not the batch."""
    import worker.prepare as prepare

    real = prepare.normalize

    def fragile(raw: Any, **kw: Any) -> Event:
        if raw.get("event") == "Boom":
            raise OverflowError("cannot convert float infinity to integer \udc00")
        return real(raw, **kw)

    monkeypatch.setattr(prepare, "normalize", fragile)
    entries = [_entry(0, _track()), _entry(1, _track("Boom")), _entry(2, _track("B"))]
    parsed, dead = parse_entries(entries, WORKFLOW, POLICY)
    assert [p.event.name for p in parsed] == ["Added to cart", "B"]
    [o] = dead
    assert (o.entry_id, o.status, o.reason) == (f"{ENTRY_MS + 1}-0", "dead", "unprocessable")
    assert o.detail == (
        "preparing the event failed: OverflowError: cannot convert float infinity to integer "
        "\\udc00"
    )
    o.detail.encode("utf-8")  # storable whatever the exception quoted


def test_route_dead_letters_an_event_that_breaks_a_stage() -> None:
    """A runner failing with an unexpected exception costs that event only."""
    prepared = _route(
        _track("Shaped", anonymousId="a1"),
        _track(anonymousId="a1"),
        run_callback=_runner(RuntimeError("bug in the runner")),
    )
    assert len(prepared.ready) == 1
    [o] = prepared.outcomes
    assert (o.status, o.reason, o.name) == ("dead", "unprocessable", "Shaped")
    assert o.detail == "preparing the event failed: RuntimeError: bug in the runner"
    assert o.event_id is not None


def test_identified_track_is_ready() -> None:
    """An event with an email is ready with a batch operation for that person."""
    prepared = _route(_track(context={"traits": EMAIL_TRAITS}))
    assert prepared.outcomes == []
    [ready] = prepared.ready
    assert (ready.identity.value, ready.operation.endpoint) == ("ada@example.com", "batch")


def test_toggle_off_is_skipped() -> None:
    """An event whose toggle is off is skipped as toggle_off."""
    assert _single_outcome(_track("Off", anonymousId="a1")) == ("skipped", "toggle_off")


def test_path_blocked_is_skipped() -> None:
    """An event on a dont_fire path is skipped as path_blocked."""
    raw = _track(
        "Checkout step", anonymousId="a1", context={"page": {"url": "https://s.example/admin/x"}}
    )
    assert _single_outcome(raw) == ("skipped", "path_blocked")


def _runner(result: Any) -> Any:
    def run(event: Event, spec: str) -> Event | None:
        assert spec == "shop.cb:shape"
        if isinstance(result, Exception):
            raise result
        return result(event) if callable(result) else result

    return run


def test_callback_drop_skips() -> None:
    """A callback that returns None drops the event as callback_dropped."""
    raw = _track("Shaped", anonymousId="a1")
    assert _single_outcome(raw, run_callback=_runner(None)) == ("skipped", "callback_dropped")


def test_callback_error_dead_letters_with_last_line() -> None:
    """A callback that fails dead-letters the event with its last line as detail."""
    prepared = _route(
        _track("Shaped", anonymousId="a1"),
        run_callback=_runner(CallbackFailed("KeyError: 'sku'")),
    )
    [outcome] = prepared.outcomes
    assert (outcome.status, outcome.reason, outcome.detail) == (
        "dead",
        "callback_error",
        "KeyError: 'sku'",
    )


def test_callback_change_is_sent() -> None:
    """The event a callback returns is what gets mapped and sent."""
    change = _runner(lambda e: replace(e, properties={"margin": 3}))
    prepared = _route(_track("Shaped", anonymousId="a1"), run_callback=change)
    [ready] = prepared.ready
    assert ready.event.properties == {"margin": 3}
    assert json.loads(ready.operation.encoded)["data"] == {"margin": 3}


def test_events_without_callback_do_not_call_runner() -> None:
    """The callback runner is only called for events whose rule names a callback."""
    prepared = _route(_track(anonymousId="a1"), run_callback=_runner(AssertionError("called")))
    assert len(prepared.ready) == 1


def test_identify_teaches_later_anonymous_event() -> None:
    """An identify earlier in the batch identifies a later event with the same anonymous id."""
    identify = {"type": "identify", "anonymousId": "a1", "traits": EMAIL_TRAITS, "timestamp": TS}
    prepared = _route(identify, _track(anonymousId="a1"))
    assert prepared.outcomes == []
    assert [r.identity.value for r in prepared.ready] == ["ada@example.com"] * 2
    assert prepared.ready[1].operation.endpoint == "batch"
    assert prepared.memories == {("anon", "a1"): "ada@example.com"}


def test_event_before_identify_stays_anonymous() -> None:
    """An event before the identify in the batch is not attributed retroactively."""
    identify = {"type": "identify", "anonymousId": "a1", "traits": EMAIL_TRAITS, "timestamp": TS}
    prepared = _route(_track(anonymousId="a1"), identify)
    assert prepared.ready[0].identity.anonymous


def test_remembered_identity_is_used() -> None:
    """An identity remembered in Redis identifies an anonymous event."""
    prepared = _route(_track(anonymousId="a1"), remembered={("anon", "a1"): "bo@example.com"})
    assert prepared.ready[0].identity.value == "bo@example.com"


def test_needed_memories_deduplicates() -> None:
    """The memory keys a batch needs are listed once each."""
    parsed = _parse(_track(anonymousId="a1"), _track("B", anonymousId="a1"))
    assert needed_memories(parsed) == [("anon", "a1")]


def test_missing_identifier_dead() -> None:
    """An event with neither identifier nor anonymous id is dead as missing_identifier."""
    assert _single_outcome(_track(userId="u1")) == ("dead", "missing_identifier")


def test_unidentified_dead_letter_policy() -> None:
    """With unidentified=dead_letter an anonymous-only event is dead."""
    policy = replace(POLICY, unidentified="dead_letter")
    assert _single_outcome(_track(anonymousId="a1"), policy=policy) == (
        "dead",
        "missing_identifier",
    )


def test_unidentified_anonymous_policy_sends_v1() -> None:
    """With the default policy an anonymous-only event goes to the anonymous endpoint."""
    [ready] = _route(_track(anonymousId="a1")).ready
    assert ready.operation.endpoint == "anonymous"


def test_mapping_rejection_is_dead_with_identifier() -> None:
    """A limit the mapping enforces dead-letters the event with its reason and identifier."""
    prepared = _route(_track("n" * 101, context={"traits": EMAIL_TRAITS}))
    [outcome] = prepared.outcomes
    assert (outcome.status, outcome.reason, outcome.identifier) == (
        "dead",
        "limit_exceeded",
        "ada@example.com",
    )


def test_outcomes_keep_inbox_order() -> None:
    """Outcomes and ready entries follow inbox order."""
    prepared = _route(_track("Off", anonymousId="a"), _track(anonymousId="a"), _track("Off"))
    assert [o.entry_id for o in prepared.outcomes] == [f"{ENTRY_MS}-0", f"{ENTRY_MS + 2}-0"]
    assert [r.entry.id for r in prepared.ready] == [f"{ENTRY_MS + 1}-0"]


def _from(kind: bytes | None, raw: Any, n: int = 0) -> Entry:
    """An inbox entry as the collector writes it, from source "web" of the given kind."""
    fields = {b"event": json.dumps(raw).encode()}
    if kind is not None:
        fields |= {b"source": b"web", b"source_kind": kind}
    return Entry(id=f"{ENTRY_MS + n}-0", fields=fields)


def _route_entries(*entries: Entry) -> Any:
    parsed, dead = parse_entries(list(entries), WORKFLOW, POLICY)
    assert dead == []
    return route(parsed, WORKFLOW, {}, POLICY)


@pytest.mark.parametrize(
    ("name", "kind", "collect"),
    [
        ("Order Completed", b"client", "server"),
        ("Button clicked", b"server", "client"),
        ("Button clicked", None, "client"),
    ],
    ids=["server-only-from-client", "client-only-from-server", "client-only-from-direct-xadd"],
)
def test_a_copy_from_the_refused_kind_is_source_filtered(
    name: str, kind: bytes | None, collect: str
) -> None:
    """The outcome is skipped/source_filtered with the event's name and a readable detail."""
    prepared = _route_entries(_from(kind, _track(name, anonymousId="a1")))
    assert prepared.ready == []
    [outcome] = prepared.outcomes
    seen = "client" if kind == b"client" else "server"
    assert (outcome.entry_id, outcome.status, outcome.reason, outcome.name) == (
        f"{ENTRY_MS}-0",
        "skipped",
        "source_filtered",
        name,
    )
    assert outcome.detail == f'collect = "{collect}" and this copy came from a {seen} source'
    assert outcome.event_id is not None


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Order Completed", b"server"),
        ("Order Completed", None),
        ("Button clicked", b"client"),
        ("Added to cart", b"client"),
        ("Added to cart", b"server"),
    ],
    ids=["server-only", "server-only-direct", "client-only", "any-client", "any-server"],
)
def test_a_copy_from_an_accepted_kind_is_sent(name: str, kind: bytes | None) -> None:
    """The kind collect asks for, or any kind when it is "any", goes on to be sent."""
    prepared = _route_entries(_from(kind, _track(name, anonymousId="a1")))
    assert prepared.outcomes == []
    assert [r.event.name for r in prepared.ready] == [name]


def test_browser_and_backend_copies_of_one_event_split() -> None:
    """With collect = "server" the backend's copy is sent and the browser's skipped."""
    order = _track("Order Completed", anonymousId="a1")
    prepared = _route_entries(_from(b"client", order, 0), _from(b"server", order, 1))
    assert [r.entry.id for r in prepared.ready] == [f"{ENTRY_MS + 1}-0"]
    assert [(o.entry_id, o.reason) for o in prepared.outcomes] == [
        (f"{ENTRY_MS}-0", "source_filtered")
    ]


def test_source_filtered_runs_no_callback() -> None:
    """A filtered copy never reaches the event's callback."""
    workflow = parse_workflow('[events.Shaped]\ncallback = "shop.cb:shape"\ncollect = "server"\n')
    parsed, _ = parse_entries(
        [_from(b"client", _track("Shaped", anonymousId="a1"))], workflow, POLICY
    )
    prepared = route(parsed, workflow, {}, POLICY, run_callback=_runner(AssertionError("called")))
    assert [(o.status, o.reason) for o in prepared.outcomes] == [("skipped", "source_filtered")]


def test_toggle_off_wins_over_source_filtered() -> None:
    """A disabled event from a refused source is reported as toggle_off."""
    workflow = parse_workflow('[events.E]\nenabled = false\ncollect = "server"\n')
    parsed, _ = parse_entries([_from(b"client", _track("E", anonymousId="a1"))], workflow, POLICY)
    [outcome] = route(parsed, workflow, {}, POLICY).outcomes
    assert (outcome.reason, outcome.detail) == ("toggle_off", "")
