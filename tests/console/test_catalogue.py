"""The event catalogue the drain keeps in its per-batch MULTI: counts, last seen, kinds, cap."""

from __future__ import annotations

import json
from collections.abc import Iterator

import fakeredis
import pytest

from tests.unit.test_drain import Clock, _drainer, _track
from worker import catalogue
from worker.emulator.server import EmulatorServer
from worker.keys import Keys
from worker.producer import enqueue_many

KEYS = Keys("cio")


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(port=0, site_id="site", api_key="key").start()
    try:
        yield server
    finally:
        server.stop()


def test_drain_counts_each_settled_event_once_with_its_source_kind(
    emulator: EmulatorServer,
) -> None:
    r = fakeredis.FakeRedis()
    clock = Clock()
    drainer = _drainer(r, emulator, clock)
    enqueue_many(r, [_track("A"), _track("B"), {**_track("A"), "messageId": "A2"}])
    client_copy = json.dumps({**_track("B"), "messageId": "B2"})
    r.xadd(KEYS.inbox, {"event": client_copy, "source": "web", "source_kind": "client"})
    drainer.process(drainer.inbox.read_new(10))
    seen = catalogue.read(r, KEYS)
    assert {n: (s.count, s.kinds) for n, s in seen.items()} == {
        "A": (2, "server"),
        "B": (2, "both"),
    }
    assert seen["A"].last_seen == pytest.approx(clock.now, abs=1)


def test_names_beyond_the_cap_count_as_other() -> None:
    r = fakeredis.FakeRedis()
    for batch in (["a", "b"], ["c", "a", "d"]):
        pipe = r.pipeline(transaction=True)
        catalogue.note(pipe, KEYS, [(n, "server") for n in batch], 10.0, cap=2)
        pipe.execute()
    seen = catalogue.read(r, KEYS)
    assert {n: s.count for n, s in seen.items()} == {"a": 2, "b": 1, catalogue.OTHER: 2}


def test_batch_rows_merge_names_and_skip_nameless() -> None:
    rows = catalogue.batch_rows([("x", "server"), ("x", "client"), (None, "server"), ("y", "")])
    assert rows == [["x", 2, 3], ["y", 1, 1]]
