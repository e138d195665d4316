"""The person and event store, without HTTP."""

from __future__ import annotations

from worker.emulator.store import ANONYMOUS_MERGE_WINDOW_S, Store

NOW = 1_750_000_000.0


def _event(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, **fields}


def _track(store: Store, ulid: str) -> str:
    return store.track(
        ("id", "1"),
        _event("a", id=ulid),
        event_type="event",
        data_key="data",
        endpoint="e",
        now=NOW,
    )


def test_identifier_owned_by_someone_else_is_a_conflict() -> None:
    """Giving a person an email another person has answers ``conflict`` and keeps both apart."""
    store = Store()
    store.identify(("id", "1"), {"email": "a@example.com"}, timestamp=None, now=NOW)
    outcome = store.identify(("id", "2"), {"email": "A@example.com"}, timestamp=None, now=NOW)
    assert outcome == "conflict"
    assert store.find(("email", "a@example.com")) is store.find(("id", "1"))


def test_body_identifier_finds_the_existing_person() -> None:
    """An identify by a new id with a known email updates that person and gives them the id."""
    store = Store()
    store.identify(("email", "a@example.com"), {}, timestamp=None, now=NOW)
    assert store.identify(("id", "9"), {"email": "a@example.com"}, timestamp=None, now=NOW) == (
        "updated"
    )
    assert len(store.people) == 1
    assert store.find(("id", "9")) is store.find(("email", "a@example.com"))


def test_merge_window_boundary_is_inclusive() -> None:
    """An anonymous event exactly 30 days old still merges."""
    store = Store()
    old = int(NOW - ANONYMOUS_MERGE_WINDOW_S)
    store.track_anonymous(
        _event("a", anonymous_id="x", timestamp=old), event_type="event", endpoint="e", now=NOW
    )
    store.identify(("id", "1"), {"anonymous_id": "x"}, timestamp=None, now=NOW)
    assert store.events[0].cio_id is not None


def test_events_without_timestamp_use_receipt_time_for_the_window() -> None:
    """An anonymous event without a timestamp ages from when it was received."""
    store = Store()
    store.track_anonymous(_event("a", anonymous_id="x"), event_type="event", endpoint="e", now=NOW)
    later = NOW + ANONYMOUS_MERGE_WINDOW_S + 1
    store.identify(("id", "1"), {"anonymous_id": "x"}, timestamp=None, now=later)
    assert store.events[0].cio_id is None


def test_unmerged_old_events_stay_claimable_by_nobody_else() -> None:
    """Events left out of a merge stay anonymous under their id."""
    store = Store()
    store.track_anonymous(
        _event("old", anonymous_id="x", timestamp=1), event_type="event", endpoint="e", now=NOW
    )
    store.identify(("id", "1"), {"anonymous_id": "x"}, timestamp=None, now=NOW)
    store.identify(("id", "2"), {"anonymous_id": "x"}, timestamp=None, now=NOW)
    assert store.events[0].cio_id is None
    assert store.merged_events == 0


def test_dropped_event_does_not_consume_its_ulid() -> None:
    """An event dropped for a suppressed person can be accepted later with the same ULID."""
    store = Store()
    ulid = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    store.suppress(("id", "1"))
    assert _track(store, ulid) == "dropped_suppressed"
    store.unsuppress(("id", "1"))
    assert _track(store, ulid) == "accepted"


def test_lean_store_keeps_no_data_or_attributes() -> None:
    """A lean store keeps identifiers and anonymous ids but no attributes or event data."""
    store = Store(lean=True)
    store.identify(("id", "1"), {"plan": "pro", "anonymous_id": "x"}, timestamp=None, now=NOW)
    store.track(
        ("id", "1"),
        _event("a", data={"k": 1}),
        event_type="event",
        data_key="data",
        endpoint="e",
        now=NOW,
    )
    person = store.find(("id", "1"))
    assert person is not None and person.attributes == {"anonymous_id": "x"}
    assert store.events[0].data is None
