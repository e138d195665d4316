"""The rest of the Segment spec through preparation: the operations each call becomes."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from worker.inbox import Entry
from worker.prepare import Policy, Prepared, parse_entries, route
from worker.workflow.loader import parse_workflow
from worker.workflow.model import Workflow

WORKFLOW = parse_workflow(
    """\
default = "on"

[events."Create group"]
enabled = true

[events."Object Deleted"]
object_type_id = "3"
"""
)
BY_USER_ID = Policy(identify_by="user_id")
BY_EMAIL = Policy()
TS = "2026-03-02T10:00:00Z"
TS_S = 1772445600


def _entry(n: int, raw: Any) -> Entry:
    return Entry(id=f"{1_772_445_600_000 + n}-0", fields={b"event": json.dumps(raw).encode()})


def prepare(
    *raws: Any,
    policy: Policy = BY_USER_ID,
    workflow: Workflow = WORKFLOW,
    remembered: dict[tuple[str, str], str] | None = None,
) -> Prepared:
    parsed, dead = parse_entries([_entry(i, r) for i, r in enumerate(raws)], workflow, policy)
    assert dead == []
    return route(parsed, workflow, remembered or {}, policy)


def ops(*raws: Any, **kw: Any) -> list[dict[str, Any]]:
    """The operations prepared for ``raws``; every one of them must be ready."""
    prepared = prepare(*raws, **kw)
    assert prepared.outcomes == [], [(o.status, o.reason, o.detail) for o in prepared.outcomes]
    return [orjson.loads(r.operation.encoded) for r in prepared.ready]


def outcome(*raws: Any, **kw: Any) -> tuple[str, str | None, str]:
    prepared = prepare(*raws, **kw)
    assert prepared.ready == []
    [o] = prepared.outcomes
    return o.status, o.reason, o.detail


def group(**kw: Any) -> dict[str, Any]:
    return {"type": "group", "groupId": "acme", "timestamp": TS, **kw}


# -- objects from group calls --------------------------------------------------------


def test_group_identifies_the_object_related_to_the_person() -> None:
    """Traits become object attributes; the person is related with relationship attributes
    whose ISO dates are Unix seconds."""
    raw = group(
        userId="u-42",
        traits={
            "name": "Acme Corp",
            "plan": "enterprise",
            "object_type_id": "2",
            "relationshipAttributes": {"role": "admin", "joined": "2026-03-01T00:00:00Z"},
        },
    )
    assert ops(raw) == [
        {
            "type": "object",
            "identifiers": {"object_type_id": "2", "object_id": "acme"},
            "action": "identify",
            "attributes": {"name": "Acme Corp", "plan": "enterprise"},
            "cio_relationships": [
                {
                    "identifiers": {"id": "u-42"},
                    "relationship_attributes": {"role": "admin", "joined": 1772323200},
                }
            ],
        }
    ]


def test_group_object_type_from_objectTypeId_then_workflow_then_1() -> None:
    """objectTypeId is read too; without any, the workflow's type, else "1"."""
    wf = parse_workflow('default = "on"\n[events."Create group"]\nobject_type_id = "5"\n')
    [op] = ops(group(userId="u", traits={"objectTypeId": 4}))
    assert op["identifiers"]["object_type_id"] == "4"
    [op] = ops(group(userId="u"), workflow=wf)
    assert op["identifiers"]["object_type_id"] == "5"
    [op] = ops(group(userId="u"))
    assert op["identifiers"]["object_type_id"] == "1"


def test_anonymous_group_relates_the_anonymous_id() -> None:
    """An anonymous visitor's group call is identify_anonymous, not dropped."""
    [op] = ops(group(anonymousId="anon-1", traits={"name": "Acme"}), policy=BY_EMAIL)
    assert op["action"] == "identify_anonymous"
    assert op["cio_relationships"] == [{"identifiers": {"anonymous_id": "anon-1"}}]
    assert op["attributes"] == {"name": "Acme"}


def test_group_relates_the_remembered_email() -> None:
    """Identifying by email, the person is the email remembered for the user id."""
    [op] = ops(group(userId="u-42"), remembered={("user", "u-42"): "ada@example.com"})
    # user_id policy: the user id itself is the identifier
    assert op["cio_relationships"] == [{"identifiers": {"id": "u-42"}}]
    [op] = ops(
        group(userId="u-42"), policy=BY_EMAIL, remembered={("user", "u-42"): "ada@example.com"}
    )
    assert op["cio_relationships"] == [{"identifiers": {"email": "ada@example.com"}}]


def test_group_without_anyone_identifies_the_object_alone() -> None:
    [op] = ops(group(traits={"name": "Acme"}))
    assert "cio_relationships" not in op and op["action"] == "identify"


def test_group_without_group_id_is_dead() -> None:
    raw = {"type": "group", "userId": "u", "timestamp": TS}
    status, reason, _ = outcome(raw)
    assert (status, reason) == ("dead", "invalid_event")


def test_bad_object_type_is_dead() -> None:
    status, reason, detail = outcome(group(userId="u", traits={"object_type_id": "accounts"}))
    assert (status, reason) == ("dead", "invalid_event") and "object_type_id" in detail


def test_customerlabs_group_traits_and_igb_id() -> None:
    """A CustomerLabs group: group_traits are the attributes, the igb value the id."""
    raw = {
        "method": "group",
        "timestamp": TS,
        "properties": {
            "customProperties": {
                "group_traits": {
                    "t": "Object",
                    "v": {
                        "name": {"t": "string", "v": "Acme"},
                        "seats": {"t": "number", "v": "50"},
                    },
                },
                "identify_by_company": {"t": "string", "v": "acme.test", "igb": True},
                "identify_by_email": {"t": "string", "v": "ada@example.com", "ib": True},
            }
        },
    }
    [op] = ops(raw, policy=BY_EMAIL)
    assert op["identifiers"] == {"object_type_id": "1", "object_id": "acme.test"}
    assert op["attributes"] == {"name": "Acme", "seats": 50}
    assert op["cio_relationships"] == [{"identifiers": {"email": "ada@example.com"}}]


def test_group_toggled_off_is_skipped() -> None:
    wf = parse_workflow('default = "on"\n[events."Create group"]\nenabled = false\n')
    status, reason, _ = outcome(group(userId="u"), workflow=wf)
    assert (status, reason) == ("skipped", "toggle_off")


# -- Object Deleted / Relationship Deleted -------------------------------------------


def test_object_deleted_deletes_the_object() -> None:
    """groupId (or context.groupId) names it; the workflow's type applies when the event
    names none, properties.object_type_id wins."""
    raw = {"type": "track", "event": "Object Deleted", "userId": "u", "groupId": "acme"}
    assert ops(raw) == [
        {
            "type": "object",
            "identifiers": {"object_type_id": "3", "object_id": "acme"},
            "action": "delete",
        }
    ]
    raw = {
        "type": "track",
        "event": "Object Deleted",
        "context": {"groupId": "acme"},
        "properties": {"object_type_id": "2"},
    }
    [op] = ops(raw)
    assert op["identifiers"] == {"object_type_id": "2", "object_id": "acme"}


def test_relationship_deleted_names_the_person() -> None:
    raw = {
        "type": "track",
        "event": "Relationship Deleted",
        "userId": "u-42",
        "context": {"groupId": "acme"},
    }
    assert ops(raw) == [
        {
            "type": "object",
            "identifiers": {"object_type_id": "1", "object_id": "acme"},
            "action": "delete_relationships",
            "cio_relationships": [{"identifiers": {"id": "u-42"}}],
        }
    ]


def test_relationship_deleted_without_a_person_is_dead() -> None:
    raw = {"type": "track", "event": "Relationship Deleted", "anonymousId": "a", "groupId": "g"}
    status, reason, _ = outcome(raw)
    assert (status, reason) == ("dead", "missing_identifier")


@pytest.mark.parametrize("name", ["Object Deleted", "Relationship Deleted"])
def test_spec_events_without_group_id_are_dead(name: str) -> None:
    status, reason, _ = outcome({"type": "track", "event": name, "userId": "u"})
    assert (status, reason) == ("dead", "invalid_event")


# -- alias -> merge ------------------------------------------------------------------


def alias(previous: str = "old-7", user: str | None = "u-1", **kw: Any) -> dict[str, Any]:
    return {"type": "alias", "previousId": previous, "userId": user, "timestamp": TS, **kw}


def test_alias_merges_previous_id_into_user_id() -> None:
    assert ops(alias()) == [
        {
            "type": "person",
            "action": "merge",
            "primary": {"id": "u-1"},
            "secondary": {"id": "old-7"},
        }
    ]


@pytest.mark.parametrize(
    ("value", "identifiers"),
    [("ada@example.com", {"email": "ada@example.com"}), ("cio_abc12", {"cio_id": "abc12"})],
)
def test_unknown_ids_are_sent_by_their_form(value: str, identifiers: dict[str, str]) -> None:
    [op] = ops(alias(previous=value))
    assert op["secondary"] == identifiers


def test_merge_uses_remembered_identifiers_and_memory_follows() -> None:
    """Identifying by email, both sides are the emails remembered for the ids; afterwards
    an event carrying only the merged-away user id goes to the primary person."""
    remembered = {("user", "u-1"): "ada@example.com", ("user", "old-7"): "old@example.com"}
    track = {"type": "track", "event": "Purchased", "userId": "old-7", "timestamp": TS}
    prepared = prepare(alias(), track, policy=BY_EMAIL, remembered=remembered)
    merge_op, event_op = (orjson.loads(r.operation.encoded) for r in prepared.ready)
    assert (merge_op["primary"], merge_op["secondary"]) == (
        {"email": "ada@example.com"},
        {"email": "old@example.com"},
    )
    assert event_op["identifiers"] == {"email": "ada@example.com"}
    assert prepared.memories == {("user", "old-7"): "ada@example.com"}


def test_merge_of_a_remembered_anonymous_id() -> None:
    """previousId known as an anonymous id: its remembered person is merged away, and the
    anonymous id now names the primary."""
    remembered = {("user", "u-1"): "ada@example.com", ("anon", "a-9"): "guest@example.com"}
    prepared = prepare(alias(previous="a-9"), policy=BY_EMAIL, remembered=remembered)
    [ready] = prepared.ready
    assert orjson.loads(ready.operation.encoded)["secondary"] == {"email": "guest@example.com"}
    assert prepared.memories == {
        ("user", "a-9"): "ada@example.com",
        ("anon", "a-9"): "ada@example.com",
    }


def test_alias_of_one_person_is_skipped_as_same_person() -> None:
    remembered = {("user", "u-1"): "ada@example.com", ("anon", "a-9"): "ada@example.com"}
    raw = alias(previous="a-9", anonymousId="a-9")
    status, reason, _ = outcome(raw, policy=BY_EMAIL, remembered=remembered)
    assert (status, reason) == ("skipped", "same_person")


def test_alias_without_previous_id_or_person_is_dead() -> None:
    raw = {"type": "alias", "userId": "u-1", "timestamp": TS}
    assert outcome(raw)[:2] == ("dead", "invalid_event")
    raw = {"type": "alias", "previousId": "p", "anonymousId": "a", "timestamp": TS}
    assert outcome(raw)[:2] == ("dead", "missing_identifier")


def test_merge_users_is_a_workflow_event() -> None:
    wf = parse_workflow('default = "on"\n[events."Merge users"]\nenabled = false\n')
    assert outcome(alias(), workflow=wf)[:2] == ("skipped", "toggle_off")


# -- devices -------------------------------------------------------------------------

IOS_CONTEXT = {
    "device": {"token": "tok-1", "type": "iOS", "model": "iPhone15,2"},
    "os": {"name": "iOS", "version": "17.4"},
    "app": {"name": "Shop", "version": "2.1.0", "build": 210, "namespace": "com.shop"},
}


def device_event(name: str, context: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    raw = {"type": "track", "event": name, "timestamp": TS, "userId": "u-42", **kw}
    raw["context"] = IOS_CONTEXT if context is None else context
    return raw


@pytest.mark.parametrize(
    "name", ["Application Installed", "Application Opened", "Device Created or Updated"]
)
def test_device_events_with_a_token_add_the_device(name: str) -> None:
    """Platform normalised, last_used = the event's time, app context as string attributes."""
    assert ops(device_event(name)) == [
        {
            "type": "person",
            "identifiers": {"id": "u-42"},
            "action": "add_device",
            "device": {
                "token": "tok-1",
                "platform": "ios",
                "last_used": TS_S,
                "attributes": {
                    "app_name": "Shop",
                    "app_version": "2.1.0",
                    "app_build": "210",
                    "app_namespace": "com.shop",
                    "device_model": "iPhone15,2",
                    "device_os": "iOS 17.4",
                },
            },
        }
    ]


def test_android_device_platform() -> None:
    context = {"device": {"token": "t", "type": "Android"}}
    [op] = ops(device_event("Application Installed", context))
    assert op["device"] == {"token": "t", "platform": "android", "last_used": TS_S}


@pytest.mark.parametrize("name", ["Application Uninstalled", "Device Deleted"])
def test_device_removal_deletes_the_device(name: str) -> None:
    assert ops(device_event(name)) == [
        {
            "type": "person",
            "identifiers": {"id": "u-42"},
            "action": "delete_device",
            "device": {"token": "tok-1"},
        }
    ]


def test_device_events_without_a_token_stay_plain_events() -> None:
    [op] = ops(device_event("Application Opened", {"app": {"version": "2"}}))
    assert (op["action"], op["name"]) == ("event", "Application Opened")


def test_anonymous_device_event_goes_as_an_anonymous_event() -> None:
    """Customer.io keeps no device for an anonymous person: the event is kept instead."""
    raw = device_event("Application Installed", userId=None, anonymousId="anon-1")
    prepared = prepare(raw, policy=BY_EMAIL)
    [ready] = prepared.ready
    assert ready.operation.endpoint == "anonymous"


def test_unknown_platform_is_dead() -> None:
    raw = device_event("Application Installed", {"device": {"token": "t", "type": "web"}})
    status, reason, detail = outcome(raw)
    assert (status, reason) == ("dead", "invalid_event") and "iOS or Android" in detail


def test_device_of_the_remembered_person() -> None:
    raw = device_event("Device Deleted")
    [op] = ops(raw, policy=BY_EMAIL, remembered={("user", "u-42"): "ada@example.com"})
    assert op["identifiers"] == {"email": "ada@example.com"}


# -- privacy requests ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("User Deleted", "delete"),
        ("User Suppressed", "suppress"),
        ("User Unsuppressed", "unsuppress"),
    ],
)
def test_privacy_requests(name: str, action: str) -> None:
    raw = {"type": "track", "event": name, "userId": "u-42", "timestamp": TS}
    assert ops(raw) == [{"type": "person", "identifiers": {"id": "u-42"}, "action": action}]


def test_delete_forgets_identity_memory_for_the_rest_of_the_batch() -> None:
    """After User Deleted, the person's remembered ids are forgotten (""), so a later
    event carrying only the user id is no longer attributed to them."""
    remembered = {
        ("user", "u-42"): "ada@example.com",
        ("anon", "a-1"): "ada@example.com",
        ("anon", "a-2"): "ada@example.com",
        ("anon", "other"): "bob@example.com",
    }
    delete = {"type": "track", "event": "User Deleted", "userId": "u-42", "anonymousId": "a-1"}
    later = {"type": "track", "event": "Purchased", "userId": "u-42", "anonymousId": "a-2"}
    bob = {"type": "track", "event": "Purchased", "anonymousId": "other"}
    prepared = prepare(delete, later, bob, policy=BY_EMAIL, remembered=remembered)
    first, second, third = prepared.ready
    assert orjson.loads(first.operation.encoded) == {
        "type": "person",
        "identifiers": {"email": "ada@example.com"},
        "action": "delete",
    }
    assert second.operation.endpoint == "anonymous"  # no longer known as Ada
    assert orjson.loads(third.operation.encoded)["identifiers"] == {"email": "bob@example.com"}
    assert prepared.memories == {
        ("user", "u-42"): "",
        ("anon", "a-1"): "",
        ("anon", "a-2"): "",
    }


def test_unsuppress_forgets_nothing() -> None:
    raw = {"type": "track", "event": "User Unsuppressed", "userId": "u-42"}
    prepared = prepare(raw, remembered={("user", "u-42"): "u-42"})
    assert prepared.memories == {}


def test_privacy_request_without_a_person_is_dead() -> None:
    raw = {"type": "track", "event": "User Deleted", "anonymousId": "a-1"}
    assert outcome(raw, policy=BY_EMAIL)[:2] == ("dead", "missing_identifier")


def test_an_identify_after_the_delete_is_remembered_again() -> None:
    delete = {"type": "track", "event": "User Deleted", "userId": "u-42"}
    identify = {"type": "identify", "userId": "u-42", "traits": {"email": "new@example.com"}}
    prepared = prepare(
        delete, identify, policy=BY_EMAIL, remembered={("user", "u-42"): "ada@example.com"}
    )
    assert prepared.memories == {("user", "u-42"): "new@example.com"}
