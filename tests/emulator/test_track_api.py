"""The Track API endpoints over real HTTP: auth, identify, events, batch, entity, store."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from ulid import ULID

from worker.emulator import EmulatorClient, EmulatorServer

from .helpers import API_KEY, NOW, SITE_ID, Track, person_op

DAY_S = 24 * 3600


def test_region_answers_its_own_url(track: Track, emulator: EmulatorServer) -> None:
    """The region check returns the emulator's base URL, region us and an environment id."""
    response = track.call("GET", "/api/v1/accounts/region")
    assert response.status_code == 200
    assert response.json() == {"url": emulator.url, "region": "us", "environment_id": 1}


@pytest.mark.parametrize(
    "auth",
    [None, (SITE_ID, "wrong-key"), ("other-site", API_KEY), ("", "")],
    ids=["none", "wrong-key", "wrong-site", "empty"],
)
def test_bad_credentials_answer_401(emulator: EmulatorServer, auth: Any) -> None:
    """Missing or wrong Basic credentials answer 401 with Customer.io's body."""
    response = Track(emulator.url, auth=auth).call("PUT", "/api/v1/customers/42", {"a": 1})
    assert response.status_code == 401
    assert response.json() == {"meta": {"error": "Unauthorized request"}}


def test_bearer_token_answers_401(track: Track) -> None:
    """An Authorization header that is not HTTP Basic is refused."""
    track.session.auth = None
    response = track.call("GET", "/api/v1/accounts/region", headers={"Authorization": "Bearer x"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("path_id", "field", "expected"),
    [
        ("42", "id", "42"),
        ("ada@example.com", "email", "ada@example.com"),
        ("a%2Fb%20c", "id", "a/b c"),
        ("ada%2Bshop%40example.com", "email", "ada+shop@example.com"),
    ],
)
def test_identify_kind_follows_the_identifier_shape(
    track: Track, control: EmulatorClient, path_id: str, field: str, expected: str
) -> None:
    """The percent-decoded path identifier is an email when email-shaped, else an id."""
    assert track.call("PUT", f"/api/v1/customers/{path_id}", {"plan": "pro"}).status_code == 200
    [person] = control.people()
    assert person[field] == expected
    assert person["attributes"] == {"plan": "pro"}


def test_identify_merges_attributes_and_null_removes(track: Track, control: EmulatorClient) -> None:
    """A second identify adds attributes, overwrites others and removes those sent as null."""
    track.call("PUT", "/api/v1/customers/42", {"plan": "free", "age": 30, "city": "Oslo"})
    track.call("PUT", "/api/v1/customers/42", {"plan": "pro", "vip": True, "city": None})
    [person] = control.people()
    assert person["attributes"] == {"plan": "pro", "age": 30, "vip": True}


def test_identify_sets_email_from_the_body(track: Track, control: EmulatorClient) -> None:
    """Reserved ``email`` in a v1 body becomes the person's email identifier."""
    track.call("PUT", "/api/v1/customers/42", {"email": "ada@example.com", "created_at": 1})
    [person] = control.people()
    assert (person["id"], person["email"]) == ("42", "ada@example.com")
    assert person["attributes"] == {"created_at": 1}


def test_email_lookup_is_case_insensitive(track: Track, control: EmulatorClient) -> None:
    """Events for an email in another case reach the same person."""
    track.call("PUT", "/api/v1/customers/ada@example.com", {"plan": "pro"})
    track.call("POST", "/api/v1/customers/ADA@Example.COM/events", {"name": "Bought"})
    track.batch(person_op("event", {"email": "Ada@EXAMPLE.com"}, name="Viewed"))
    people = control.people()
    assert len(people) == 1
    assert {e["cio_id"] for e in control.events()} == {people[0]["cio_id"]}


def test_cio_id_reference_updates_the_person(track: Track, control: EmulatorClient) -> None:
    """``cio_<value>`` in the path reaches the person with that cio_id and may change the id."""
    track.call("PUT", "/api/v1/customers/42", {"plan": "free"})
    cio_id = control.people()[0]["cio_id"]
    track.call("PUT", f"/api/v1/customers/cio_{cio_id}", {"id": "43", "plan": "pro"})
    [person] = control.people()
    assert (person["cio_id"], person["id"], person["attributes"]) == (cio_id, "43", {"plan": "pro"})


def test_unknown_cio_id_is_dropped(track: Track, control: EmulatorClient) -> None:
    """An identify for a cio_id nobody has answers 200 but creates nobody."""
    assert track.call("PUT", "/api/v1/customers/cio_ffff", {"plan": "pro"}).status_code == 200
    assert control.people() == []
    assert control.counters()["outcomes"] == {"dropped_unknown_cio_id": 1}


def test_person_event_is_stored_with_its_fields(track: Track, control: EmulatorClient) -> None:
    """A v1 person event is stored with type, name, id, timestamp, data and endpoint."""
    ulid = str(ULID())
    body = {"name": " /pricing ", "type": "page", "id": ulid, "timestamp": 1_700_000_000}
    body["data"] = {"url": "https://shop.example.com/pricing"}
    assert track.call("POST", "/api/v1/customers/42/events", body).status_code == 200
    [event] = control.events()
    assert event["type"] == "page"
    assert event["name"] == "/pricing"
    assert (event["id"], event["timestamp"]) == (ulid, 1_700_000_000)
    assert event["data"] == {"url": "https://shop.example.com/pricing"}
    assert (event["person_id"], event["endpoint"]) == (
        "42",
        "/api/v1/customers/{identifier}/events",
    )


def test_event_for_unknown_person_creates_them(track: Track, control: EmulatorClient) -> None:
    """An event for an identifier nobody has creates that person (inferred behaviour)."""
    track.batch(person_op("event", {"email": "new@example.com"}, name="Signed up"))
    [person] = control.people()
    assert person["email"] == "new@example.com"
    assert control.counters()["people_created"] == 1


def test_anonymous_event_is_stored_by_anonymous_id(track: Track, control: EmulatorClient) -> None:
    """A v1 anonymous event is kept under its anonymous id and belongs to nobody yet."""
    track.call("POST", "/api/v1/events", {"name": "Viewed", "anonymous_id": "anon-1"})
    [event] = control.events()
    assert (event["anonymous_id"], event["cio_id"], event["merged"]) == ("anon-1", None, False)
    assert event["endpoint"] == "/api/v1/events"


def _identify_v1(track: Track, anonymous_id: str) -> None:
    track.call("PUT", "/api/v1/customers/42", {"anonymous_id": anonymous_id})


def _identify_v2(track: Track, anonymous_id: str) -> None:
    track.batch(person_op("identify", attributes={"anonymous_id": anonymous_id}))


@pytest.mark.parametrize("identify", [_identify_v1, _identify_v2], ids=["v1", "v2"])
def test_identify_with_anonymous_id_merges_events(
    track: Track, control: EmulatorClient, identify: Any
) -> None:
    """Identifying a person with an anonymous id moves that id's events to the person."""
    track.call("POST", "/api/v1/events", {"name": "Viewed", "anonymous_id": "anon-1"})
    track.call("POST", "/api/v1/events", {"name": "Other", "anonymous_id": "anon-2"})
    identify(track, "anon-1")
    merged = {e["name"]: (e["person_id"], e["merged"]) for e in control.events()}
    assert merged == {"Viewed": ("42", True), "Other": (None, False)}
    assert control.counters()["events_merged"] == 1


def test_merge_window_is_thirty_days(track: Track, control: EmulatorClient) -> None:
    """Anonymous events older than 30 days stay anonymous when the person is identified."""
    for name, age_days in (("recent", 29), ("old", 31)):
        body = {"name": name, "anonymous_id": "anon-1", "timestamp": int(NOW - age_days * DAY_S)}
        track.call("POST", "/api/v1/events", body)
    _identify_v1(track, "anon-1")
    assert {e["name"]: e["merged"] for e in control.events()} == {"recent": True, "old": False}


def test_later_anonymous_events_join_the_person(track: Track, control: EmulatorClient) -> None:
    """An anonymous event whose id a person already claimed is attributed to that person."""
    _identify_v1(track, "anon-1")
    track.call("POST", "/api/v1/events", {"name": "Viewed", "anonymous_id": "anon-1"})
    [event] = control.events()
    assert event["person_id"] == "42"


def test_duplicate_ulid_is_answered_but_not_stored(track: Track, control: EmulatorClient) -> None:
    """An event repeating an accepted ULID answers 200, is not stored, and counts a duplicate."""
    ulid = str(ULID())
    first = track.batch(person_op("event", name="Bought", id=ulid))
    again_v1 = track.call("POST", "/api/v1/customers/42/events", {"name": "Bought", "id": ulid})
    again_v2 = track.batch(person_op("event", name="Bought", id=ulid.lower()))
    assert [r.status_code for r in (first, again_v1, again_v2)] == [200, 200, 200]
    assert len(control.events()) == 1
    counters = control.counters()
    assert (counters["events_accepted"], counters["events_duplicate"]) == (1, 2)


def test_events_without_ulid_are_all_stored(track: Track, control: EmulatorClient) -> None:
    """Events without an id are never de-duplicated."""
    track.batch(person_op("event", name="Bought"), person_op("event", name="Bought"))
    assert len(control.events()) == 2


def test_batch_applies_valid_ops_and_lists_invalid_ones(
    track: Track, control: EmulatorClient
) -> None:
    """A batch with an invalid operation answers 207 naming it and applies the others."""
    response = track.batch(
        person_op("identify", attributes={"plan": "pro"}),
        person_op("event", name="   "),
        person_op("event", name="Bought"),
    )
    assert response.status_code == 207
    assert response.json() == {
        "errors": [
            {
                "batch_index": 1,
                "reason": "blank",
                "field": "name",
                "message": "name must not be blank",
            }
        ]
    }
    assert [e["name"] for e in control.events()] == ["Bought"]
    assert control.people()[0]["attributes"] == {"plan": "pro"}


def test_entity_applies_one_operation(track: Track, control: EmulatorClient) -> None:
    """``/api/v2/entity`` applies a single operation and answers 200 {}."""
    response = track.call("POST", "/api/v2/entity", person_op("screen", name="Home"))
    assert (response.status_code, response.json()) == (200, {})
    assert [(e["type"], e["endpoint"]) for e in control.events()] == [("screen", "/api/v2/entity")]


def test_invalid_entity_answers_400_with_errors_list(track: Track) -> None:
    """An invalid entity answers 400 with ``{"meta": {"errors": [...]}}``."""
    response = track.call("POST", "/api/v2/entity", person_op("event", name="x", timestamp="now"))
    assert response.status_code == 400
    assert response.json() == {"meta": {"errors": ["timestamp must be an integer Unix timestamp"]}}


LONG = "x" * 101
V1_EVENT_ERRORS = [
    ({"data": {}}, "name is required"),
    ({"name": "  "}, "name must not be blank"),
    ({"name": LONG}, "longer than 100 bytes"),
    ({"name": "é" * 51}, "longer than 100 bytes"),
    ({"name": "a", "timestamp": 1_700_000_000_000}, "milliseconds"),
    ({"name": "a", "timestamp": 1_700_000_000.5}, "integer Unix timestamp"),
    ({"name": "a", "timestamp": "1700000000"}, "integer Unix timestamp"),
    ({"name": "a", "id": "not-a-ulid"}, "must be a ULID"),
    ({"name": "a", "id": "01ARZ3NDEKTSV4RRFFQ69G5FAI"}, "must be a ULID"),
    ({"name": "a", "data": ["x"]}, "data must be an object"),
    ({"name": "a", "data": {"blob": "x" * 100_001}}, "larger than 100000 bytes"),
    ({"name": "a", "type": "track"}, "type must be one of"),
]


@pytest.mark.parametrize(("body", "message"), V1_EVENT_ERRORS)
def test_invalid_v1_event_answers_400_with_error(track: Track, body: Any, message: str) -> None:
    """An invalid v1 event answers 400 ``{"meta": {"error": ...}}`` naming the problem."""
    response = track.call("POST", "/api/v1/customers/42/events", body)
    assert response.status_code == 400
    assert message in response.json()["meta"]["error"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/v1/customers/" + "i" * 151, {"a": 1}, "identifier is longer than 150 bytes"),
        ("/api/v1/customers/42", {"n" * 151: 1}, "attribute name longer than 150"),
        ("/api/v1/customers/42", {"bio": "b" * 1001}, "bio is longer than 1000 bytes"),
        ("/api/v1/customers/42", {"tags": ["t" * 400] * 3}, "tags is longer than 1000 bytes"),
        ("/api/v1/customers/42", {f"a{i}": i for i in range(301)}, "at most 300"),
        ("/api/v1/customers/42", {"created_at": 1_700_000_000_000}, "milliseconds"),
        ("/api/v1/customers/42", {"email": "not-an-email"}, "email must be an email"),
        ("/api/v1/events", {"name": "a", "anonymous_id": 7}, "anonymous_id must be"),
    ],
    ids=["id", "attr-name", "attr-value", "non-string-value", "count", "ms", "email", "anon"],
)
def test_invalid_v1_request_answers_400(track: Track, path: str, body: Any, message: str) -> None:
    """v1 identify and anonymous event limits answer 400 with the v1 error shape."""
    method = "POST" if path.endswith("events") else "PUT"
    response = track.call(method, path, body)
    assert response.status_code == 400
    assert message in response.json()["meta"]["error"]


@pytest.mark.parametrize(
    ("op", "field", "reason"),
    [
        (person_op("event", {"id": "1", "email": "a@b.co"}, name="a"), "identifiers", "invalid"),
        (person_op("event", {}, name="a"), "identifiers", "invalid"),
        (person_op("event", {"id": "i" * 151}, name="a"), "identifiers.id", "too_long"),
        (person_op("event", {"email": "nope"}, name="a"), "identifiers.email", "invalid"),
        (person_op("event"), "name", "required"),
        (person_op("event", name="a", id="123"), "id", "invalid_ulid"),
        (person_op("page", name="https://x.example/" + "p" * 90), "name", "too_long"),
        (
            person_op("event", name="a", timestamp=1_700_000_000_000),
            "timestamp",
            "invalid_timestamp",
        ),
        (person_op("event", name="a", attributes=[1]), "attributes", "invalid"),
        (person_op("identify", attributes={"v": "x" * 1001}), "attributes.v", "too_long"),
        (person_op("identify", timestamp=1.5), "timestamp", "invalid_timestamp"),
        (person_op("track", name="a"), "action", "invalid"),
        (
            {"type": "object", "identifiers": {"object_id": "1"}, "action": "identify"},
            "identifiers",
            "invalid",
        ),
        ({"type": "account", "identifiers": {"id": "1"}, "action": "identify"}, "type", "invalid"),
        ("not an object", "", "invalid"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_batch_operation_is_listed_in_207(
    track: Track, op: Any, field: str, reason: str
) -> None:
    """Each invalid v2 operation is reported with its index, field and reason."""
    response = track.batch(person_op("identify", attributes={"ok": 1}), op)
    assert response.status_code == 207
    [error] = response.json()["errors"]
    assert (error["batch_index"], error["field"], error["reason"]) == (1, field, reason)


def test_operation_over_32kb_is_listed_in_207(track: Track) -> None:
    """An operation larger than 32 KB inside a batch is refused alone."""
    big = person_op("event", name="a", attributes={f"k{i}": "v" * 900 for i in range(40)})
    response = track.batch(person_op("event", name="small"), big)
    assert response.status_code == 207
    assert response.json()["errors"][0]["reason"] == "too_large"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (
            "/api/v2/batch",
            {"batch": [person_op("event", name="a")] * 2000, "pad": "p" * 400_000},
            413,
        ),
        ("/api/v2/entity", person_op("event", name="a", attributes={"p": "p" * 33_000}), 413),
        ("/api/v2/batch", {"batch": {"not": "a list"}}, 400),
        ("/api/v2/batch", ["not", "an", "object"], 400),
        ("/api/v2/entity", [1], 400),
    ],
    ids=["batch-500kb", "entity-32kb", "batch-not-list", "batch-not-object", "entity-not-object"],
)
def test_whole_v2_request_errors_use_errors_list(
    track: Track, path: str, body: Any, status: int
) -> None:
    """Oversized or malformed v2 requests are refused whole with ``meta.errors``."""
    response = track.call("POST", path, body)
    assert response.status_code == status
    assert isinstance(response.json()["meta"]["errors"], list)


@pytest.mark.parametrize(
    ("path", "shape"),
    [("/api/v1/customers/42/events", "error"), ("/api/v2/batch", "errors")],
)
def test_body_that_is_not_json_answers_400(track: Track, path: str, shape: str) -> None:
    """A body that is not JSON answers 400 in the endpoint family's error shape."""
    headers = {"Content-Type": "application/json"}
    response = track.call("POST", path, data=b"{not json", headers=headers)
    assert response.status_code == 400
    assert shape in response.json()["meta"]


def test_v1_delete_removes_the_person(track: Track, control: EmulatorClient) -> None:
    """``DELETE /api/v1/customers/{id}`` removes the person."""
    track.call("PUT", "/api/v1/customers/42", {"a": 1})
    assert track.call("DELETE", "/api/v1/customers/42").status_code == 200
    assert control.people() == []


@pytest.mark.parametrize("action", ["delete", "suppress"])
def test_v2_delete_and_suppress_remove_the_person(
    track: Track, control: EmulatorClient, action: str
) -> None:
    """Delete and suppress operations remove the person."""
    track.batch(person_op("identify", attributes={"a": 1}), person_op(action))
    assert control.people() == []


def test_suppressed_identifier_is_not_recreated(track: Track, control: EmulatorClient) -> None:
    """A suppressed identifier cannot be added back until unsuppressed."""
    track.batch(person_op("identify"), person_op("suppress"), person_op("identify"))
    assert control.people() == []
    track.batch(person_op("unsuppress"), person_op("identify"))
    assert len(control.people()) == 1


def test_merge_folds_secondary_into_primary(track: Track, control: EmulatorClient) -> None:
    """A merge moves the secondary's events and attributes to the primary and deletes it."""
    track.batch(
        person_op("identify", {"id": "1"}, attributes={"a": 1}),
        person_op("event", {"id": "2"}, name="Bought"),
        {"type": "person", "action": "merge", "primary": {"id": "1"}, "secondary": {"id": "2"}},
    )
    [person] = control.people()
    assert person["id"] == "1"
    assert [e["person_id"] for e in control.events()] == ["1"]


def test_stale_v2_identify_is_silently_dropped(track: Track, control: EmulatorClient) -> None:
    """An identify older than the person's latest change answers 200 but is not applied."""
    track.batch(person_op("identify", attributes={"plan": "pro"}, timestamp=2_000))
    response = track.batch(person_op("identify", attributes={"plan": "free"}, timestamp=1_000))
    assert response.status_code == 200
    assert control.people()[0]["attributes"] == {"plan": "pro"}
    assert control.counters()["outcomes"]["stale"] == 1


def test_update_only_identify_creates_nobody(track: Track, control: EmulatorClient) -> None:
    """``_update: true`` for an unknown person answers 200 and creates nobody."""
    track.call("PUT", "/api/v1/customers/42", {"_update": True, "a": 1})
    assert control.people() == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/api/v3/nothing", 404), ("GET", "/api/v2/batch", 405), ("POST", "/", 404)],
)
def test_unknown_routes_are_refused(track: Track, method: str, path: str, status: int) -> None:
    """Unknown paths answer 404 and known paths with another method 405."""
    assert track.call(method, path).status_code == status


def test_client_hanging_up_mid_request_is_one_line_not_a_traceback(
    emulator: EmulatorServer, capfd: pytest.CaptureFixture[str]
) -> None:
    """A client reset mid-body (a killed worker) is noted in one line; the server goes on."""
    url = urlsplit(emulator.url)
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall(b"POST /api/v2/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, not FIN
    deadline = time.monotonic() + 5
    err = ""
    while time.monotonic() < deadline and "hung up" not in err:
        time.sleep(0.05)
        err += capfd.readouterr().err
    assert "hung up" in err
    assert "Traceback" not in err
    assert "requests_total" in EmulatorClient(emulator.url).counters()  # still serving
