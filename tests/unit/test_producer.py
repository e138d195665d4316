"""Tests for the producer: validating events and adding them to the inbox."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import pytest

from worker.errors import InvalidEvent
from worker.keys import Keys
from worker.producer import Rejection, encode_event, enqueue, enqueue_many

INBOX = Keys("cio").inbox


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def _stored(r: fakeredis.FakeRedis, key: str = INBOX) -> list[Any]:
    return [json.loads(fields[b"event"]) for _, fields in r.xrange(key)]


def test_enqueue_adds_compact_json(r: fakeredis.FakeRedis) -> None:
    """One event is stored as compact JSON under the event field and its id returned."""
    entry_id = enqueue(r, {"type": "track", "event": "Café"})
    entries = r.xrange(INBOX)
    assert [e[0].decode() for e in entries] == [entry_id]
    assert entries[0][1] == {b"event": '{"type":"track","event":"Café"}'.encode()}


def test_enqueue_uses_prefix(r: fakeredis.FakeRedis) -> None:
    """The inbox key follows the configured prefix."""
    enqueue(r, {"type": "track"}, prefix="other")
    assert r.xlen("other:inbox") == 1
    assert r.xlen(INBOX) == 0


@pytest.mark.parametrize("raw", ['{"type":"track"}', b'{"type":"track"}'])
def test_enqueue_accepts_json_text(r: fakeredis.FakeRedis, raw: str | bytes) -> None:
    """An event given as JSON text or bytes is parsed and stored."""
    enqueue(r, raw)
    assert _stored(r) == [{"type": "track"}]


def test_enqueue_accepts_queue_tuple_list(r: fakeredis.FakeRedis) -> None:
    """The CustomerLabs snippet form [method, ...] is accepted."""
    enqueue(r, ["track", "Added to cart", {"sku": "A1"}])
    assert _stored(r) == [["track", "Added to cart", {"sku": "A1"}]]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("{nope", "invalid_json"),
        (42, "not_an_object"),
        ("[1, 2]", "not_an_object"),
        ([], "not_an_object"),
        ('"text"', "not_an_object"),
        ({"v": float("nan")}, "invalid_field"),
        ({"v": object()}, "invalid_field"),
        ({"v": "x" * 100}, "too_large"),
    ],
    ids=["bad-json", "number", "number-list", "empty-list", "string", "nan", "object", "large"],
)
def test_enqueue_refuses_bad_events(r: fakeredis.FakeRedis, event: Any, reason: str) -> None:
    """A bad event raises InvalidEvent with a stable reason and nothing is stored."""
    with pytest.raises(InvalidEvent) as info:
        enqueue(r, event, max_bytes=50)
    assert info.value.reason == reason
    assert r.xlen(INBOX) == 0


def test_size_limit_is_inclusive() -> None:
    """An event exactly at the byte limit is accepted."""
    data = encode_event({"v": "x"})
    assert encode_event({"v": "x"}, max_bytes=len(data)) == data


def test_enqueue_many_reports_rejections_by_index(r: fakeredis.FakeRedis) -> None:
    """Valid events are stored in order; refused ones are reported by their position."""
    events = [{"n": 0}, 7, {"n": 2}, "{bad", {"n": 4, "pad": "x" * 100}]
    ids, rejected = enqueue_many(r, events, max_bytes=60)
    assert len(ids) == 2
    assert _stored(r) == [{"n": 0}, {"n": 2}]
    assert [(x.index, x.reason) for x in rejected] == [
        (1, "not_an_object"),
        (3, "invalid_json"),
        (4, "too_large"),
    ]
    assert all(isinstance(x, Rejection) and x.detail for x in rejected)


def test_enqueue_many_crosses_pipeline_chunks(r: fakeredis.FakeRedis) -> None:
    """More events than one pipeline chunk are all stored, in order."""
    ids, rejected = enqueue_many(r, ({"n": i} for i in range(2500)))
    assert (len(ids), rejected) == (2500, [])
    assert [e["n"] for e in _stored(r)] == list(range(2500))
    assert len(set(ids)) == 2500


def test_enqueue_many_empty(r: fakeredis.FakeRedis) -> None:
    """No events means nothing stored and nothing rejected."""
    assert enqueue_many(r, []) == ([], [])
    assert r.xlen(INBOX) == 0
