"""Workflow history: every change is kept with author, time and note, audited, and a stale
edit is refused naming who changed the workflow since."""

from __future__ import annotations

import fakeredis
import pytest

from worker import audit
from worker.keys import Keys
from worker.workflow.model import EventRule, Workflow
from worker.workflow.store import HISTORY_MAX, StaleVersion, WorkflowStore

KEYS = Keys("h")
ONE = Workflow(events={"A": EventRule()})
TWO = Workflow(events={"A": EventRule(enabled=False)})


@pytest.fixture
def r() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def test_every_change_is_a_version_with_author_and_audit(r: fakeredis.FakeRedis) -> None:
    times = iter([100.0, 200.0, 300.0])
    store = WorkflowStore(r, KEYS, clock=lambda: next(times))
    assert store.seed(ONE)
    assert store.save(TWO, based_on=1, author="ann") == 2
    store.set_enabled("A", True, author="cli:root")
    versions = store.history()
    assert [(v.version, v.author, v.at) for v in versions] == [
        (3, "cli:root", 300.0),
        (2, "ann", 200.0),
        (1, "file", 100.0),
    ]
    assert versions[0].note == "enabled A"
    assert versions[1].workflow["events"]["A"]["enabled"] is False
    assert store.info().author == "cli:root"
    assert store.at_version(2) == versions[1] and store.at_version(9) is None
    entries = audit.read(r, KEYS)
    assert [(e.user, e.action, e.detail["version"]) for e in entries] == [
        ("cli:root", "workflow.change", 3),
        ("ann", "workflow.change", 2),
        ("file", "workflow.change", 1),
    ]


def test_stale_save_is_refused_and_names_who_changed_it(r: fakeredis.FakeRedis) -> None:
    store = WorkflowStore(r, KEYS, clock=lambda: 1_700_000_000.0)
    store.replace(ONE, author="ann")
    store.save(TWO, based_on=1, author="bob")
    with pytest.raises(StaleVersion) as refused:
        store.save(ONE, based_on=1, author="ann")
    assert "bob saved version 2 at 2023-11-14 22:13:20 UTC" in str(refused.value)
    assert store.get() == TWO and store.version() == 2
    assert len(store.history()) == 2


def test_history_is_capped(r: fakeredis.FakeRedis) -> None:
    store = WorkflowStore(r, KEYS)
    for _ in range(HISTORY_MAX + 3):
        store.replace(ONE)
    versions = store.history()
    assert len(versions) == HISTORY_MAX
    assert versions[0].version == HISTORY_MAX + 3
