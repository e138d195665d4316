"""The emulator models objects, relationships, merges, devices, suppression and deletion
the way Customer.io documents them, over real HTTP, and its requests pass the contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from worker.emulator import EmulatorClient

from .helpers import Track, person_op

CONTRACT_CHECK = Path(__file__).resolve().parents[3] / "shared" / "tools" / "cio-contract-check"
ACME = {"object_type_id": "1", "object_id": "acme"}


def object_op(action: str, ids: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    return {"type": "object", "identifiers": ids or ACME, "action": action, **fields}


def contract_ok(control: EmulatorClient, tmp_path: Path) -> None:
    """Every recorded request conforms to Customer.io's published spec."""
    path = tmp_path / "requests.jsonl"
    path.write_text(control.requests_jsonl())
    result = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def the_object(control: EmulatorClient) -> dict[str, Any]:
    [obj] = control.objects()
    return obj


def test_object_identify_creates_it_with_a_related_person(
    track: Track, control: EmulatorClient, tmp_path: Path
) -> None:
    """Attributes are stored, the person is created and related with its attributes."""
    response = track.batch(
        object_op(
            "identify",
            attributes={"name": "Acme", "plan": "pro"},
            cio_relationships=[
                {"identifiers": {"id": "42"}, "relationship_attributes": {"role": "admin"}}
            ],
        )
    )
    assert response.status_code == 200, response.text
    obj = the_object(control)
    assert (obj["object_type_id"], obj["object_id"]) == ("1", "acme")
    assert obj["attributes"] == {"name": "Acme", "plan": "pro"}
    [rel] = obj["relationships"]
    assert (rel["id"], rel["relationship_attributes"]) == ("42", {"role": "admin"})
    contract_ok(control, tmp_path)


def test_null_or_empty_removes_object_and_relationship_attributes(
    track: Track, control: EmulatorClient
) -> None:
    rel = {"identifiers": {"id": "42"}, "relationship_attributes": {"role": "admin", "x": 1}}
    track.batch(object_op("identify", attributes={"a": 1, "b": 2}, cio_relationships=[rel]))
    rel = {"identifiers": {"id": "42"}, "relationship_attributes": {"role": None, "x": ""}}
    track.batch(object_op("identify", attributes={"a": None, "b": ""}, cio_relationships=[rel]))
    obj = the_object(control)
    assert obj["attributes"] == {}
    assert obj["relationships"][0]["relationship_attributes"] == {}


def test_anonymous_relationship_carries_over_on_identify(
    track: Track, control: EmulatorClient, tmp_path: Path
) -> None:
    """identify_anonymous relates an anonymous id; identifying the person with it moves
    the relationship to the person."""
    rel = {"identifiers": {"anonymous_id": "anon-1"}, "relationship_attributes": {"r": "x"}}
    assert track.batch(object_op("identify_anonymous", cio_relationships=[rel])).status_code == 200
    obj = the_object(control)
    assert obj["anonymous_relationships"] == [
        {"anonymous_id": "anon-1", "relationship_attributes": {"r": "x"}}
    ]
    track.batch(person_op("identify", {"id": "42"}, attributes={"anonymous_id": "anon-1"}))
    obj = the_object(control)
    assert obj["anonymous_relationships"] == []
    assert [(r["id"], r["relationship_attributes"]) for r in obj["relationships"]] == [
        ("42", {"r": "x"})
    ]
    contract_ok(control, tmp_path)


def test_delete_relationships_and_delete_object(
    track: Track, control: EmulatorClient, tmp_path: Path
) -> None:
    people = [{"identifiers": {"id": "42"}}, {"identifiers": {"email": "a@b.example"}}]
    track.batch(object_op("identify", cio_relationships=people))
    track.batch(object_op("delete_relationships", cio_relationships=[people[0]]))
    assert [r["email"] for r in the_object(control)["relationships"]] == ["a@b.example"]
    track.batch(object_op("delete"))
    assert control.objects() == []
    assert len(control.people()) == 2  # people stay; only the object and its links go
    contract_ok(control, tmp_path)


def test_deleting_a_person_removes_their_relationships(
    track: Track, control: EmulatorClient
) -> None:
    track.batch(object_op("identify", cio_relationships=[{"identifiers": {"id": "42"}}]))
    track.batch(person_op("delete", {"id": "42"}))
    assert the_object(control)["relationships"] == []


def test_suppressed_person_cannot_be_related(track: Track, control: EmulatorClient) -> None:
    """A suppressed identifier is not re-added by a relationship."""
    track.batch(person_op("identify", {"id": "42"}, attributes={"a": 1}))
    track.batch(person_op("suppress", {"id": "42"}))
    track.batch(object_op("identify", cio_relationships=[{"identifiers": {"id": "42"}}]))
    assert the_object(control)["relationships"] == []
    assert control.people() == []


def test_invalid_object_operations_are_listed(track: Track) -> None:
    bad = [
        object_op("identify", {"object_type_id": "one", "object_id": "acme"}),
        object_op("identify", {"object_type_id": "1", "object_id": ""}),
        object_op("delete_relationships"),
        object_op("identify_anonymous", cio_relationships=[{"identifiers": {"id": "1"}}]),
        object_op("merge"),
    ]
    response = track.batch(*bad)
    assert response.status_code == 207
    fields = [(e["batch_index"], e["field"]) for e in response.json()["errors"]]
    assert fields == [
        (0, "identifiers.object_type_id"),
        (1, "identifiers.object_id"),
        (2, "cio_relationships"),
        (3, "cio_relationships[0].identifiers"),
        (4, "action"),
    ]


def merge_op(primary: dict[str, str], secondary: dict[str, str]) -> dict[str, Any]:
    return {"type": "person", "action": "merge", "primary": primary, "secondary": secondary}


def test_merge_moves_attributes_events_and_relationships(
    track: Track, control: EmulatorClient, tmp_path: Path
) -> None:
    """The secondary's attributes (where the primary has none), events, identifiers and
    relationships move to the primary; the secondary is gone."""
    track.batch(
        person_op("identify", {"id": "42"}, attributes={"plan": "pro"}),
        person_op("identify", {"email": "old@example.com"}, attributes={"plan": "free", "x": 1}),
        person_op("event", {"email": "old@example.com"}, name="Signed up"),
        object_op("identify", cio_relationships=[{"identifiers": {"email": "old@example.com"}}]),
    )
    response = track.batch(merge_op({"id": "42"}, {"email": "old@example.com"}))
    assert response.status_code == 200
    [person] = control.people()
    assert (person["id"], person["email"]) == ("42", "old@example.com")
    assert person["attributes"] == {"plan": "pro", "x": 1}
    [event] = control.events()
    assert event["person_id"] == "42"
    assert [r["id"] for r in the_object(control)["relationships"]] == ["42"]
    contract_ok(control, tmp_path)


def test_merge_into_a_missing_primary_changes_nothing(
    track: Track, control: EmulatorClient
) -> None:
    track.batch(person_op("identify", {"id": "old"}, attributes={"a": 1}))
    track.batch(merge_op({"id": "new"}, {"id": "old"}))
    assert [p["id"] for p in control.people()] == ["old"]
    assert control.counters()["outcomes"]["merge_not_found"] == 1


def device_op(action: str, ref: dict[str, str], **device: Any) -> dict[str, Any]:
    return person_op(action, ref, device=device)


def test_devices_are_added_updated_moved_and_deleted(
    track: Track, control: EmulatorClient, tmp_path: Path
) -> None:
    """A token belongs to one person: adding it elsewhere moves it; delete removes it;
    a merge carries the secondary's devices over."""
    track.batch(
        device_op(
            "add_device",
            {"id": "42"},
            token="t1",
            platform="ios",
            last_used=1_750_000_000,
            attributes={"app_version": "2.1.0"},
        ),
        device_op("add_device", {"id": "43"}, token="t2", platform="android"),
    )
    devices = {p["id"]: p["devices"] for p in control.people()}
    assert devices["42"] == [
        {
            "token": "t1",
            "platform": "ios",
            "last_used": 1_750_000_000,
            "attributes": {"app_version": "2.1.0"},
        }
    ]
    track.batch(device_op("add_device", {"id": "43"}, token="t1", platform="ios"))
    devices = {p["id"]: [d["token"] for d in p["devices"]] for p in control.people()}
    assert devices == {"42": [], "43": ["t1", "t2"]}
    track.batch(device_op("delete_device", {"id": "43"}, token="t2"))
    track.batch(person_op("identify", {"id": "42"}, attributes={"a": 1}))
    track.batch(
        {"type": "person", "action": "merge", "primary": {"id": "42"}, "secondary": {"id": "43"}}
    )
    [person] = control.people()
    assert [d["token"] for d in person["devices"]] == ["t1"]
    contract_ok(control, tmp_path)


def test_invalid_devices_are_listed(track: Track) -> None:
    response = track.batch(
        device_op("add_device", {"id": "1"}, token="t", platform="web"),
        device_op("add_device", {"id": "1"}, platform="ios"),
        device_op("add_device", {"id": "1"}, token="t", platform="ios", attributes={"n": 1}),
        device_op("add_device", {"id": "1"}, token="t", platform="ios", last_used=1.5),
    )
    assert response.status_code == 207
    assert [e["field"] for e in response.json()["errors"]] == [
        "device.platform",
        "device.token",
        "device.attributes.n",
        "device.last_used",
    ]


def test_suppressed_person_gets_no_device(track: Track, control: EmulatorClient) -> None:
    track.batch(person_op("suppress", {"id": "42"}))
    track.batch(device_op("add_device", {"id": "42"}, token="t", platform="ios"))
    assert control.people() == []
    assert control.counters()["outcomes"]["dropped_suppressed"] == 1
