"""The live workflow in Redis: read, replace, toggle, seed, and what every replica sees."""

from __future__ import annotations

import json

import fakeredis
import pytest

from worker.errors import WorkflowError
from worker.keys import Keys
from worker.workflow import store as store_module
from worker.workflow.model import ClientDefinition, EventRule, TriggerPath, Workflow
from worker.workflow.store import WorkflowStore

KEYS = Keys("test")
CART = Workflow(
    "off",
    "Page viewed",
    {
        "Added to cart": EventRule(
            callback="a.b:c", trigger_paths=(TriggerPath("/checkout/*", "glob", "dont_fire"),)
        ),
        "Page viewed": EventRule(enabled=False),
    },
)


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    """A fresh in-memory Redis."""
    return fakeredis.FakeRedis()


@pytest.fixture
def store(redis_client: fakeredis.FakeRedis) -> WorkflowStore:
    """A store on the fake Redis with a fixed clock."""
    return WorkflowStore(redis_client, KEYS, clock=lambda: 1_700_000_000.5)


def test_nothing_stored_means_everything_off(store: WorkflowStore) -> None:
    """With no workflow in Redis, the default is off, "Page viewed", no events."""
    assert store.get() == Workflow("off", "Page viewed", {})
    assert store.version() == 0


def test_replace_then_get(store: WorkflowStore) -> None:
    """A replaced workflow is what get returns."""
    store.replace(CART)
    assert store.get() == CART


def test_every_change_bumps_the_version(store: WorkflowStore) -> None:
    """replace and set_enabled each increase the version by one."""
    assert store.replace(CART) == 1
    store.set_enabled("Page viewed", True)
    assert store.info().version == 2
    assert store.info().updated_at == 1_700_000_000.5


def test_storage_format(store: WorkflowStore, redis_client: fakeredis.FakeRedis) -> None:
    """The hash at keys.workflow holds the workflow as JSON in the file's shape."""
    store.replace(CART)
    stored = redis_client.hgetall(KEYS.workflow)
    assert set(stored) == {b"workflow", b"version", b"updated_at", b"author"}
    data = json.loads(stored[b"workflow"])
    assert data["default"] == "off"
    assert data["events"]["Added to cart"]["trigger_paths"] == [
        {"pattern": "/checkout/*", "match": "glob", "action": "dont_fire"}
    ]


def test_collect_and_client_are_stored_and_kept_by_toggles(
    store: WorkflowStore, redis_client: fakeredis.FakeRedis
) -> None:
    """collect and client definitions survive storage and a toggle of the same event."""
    rule = EventRule(collect="client", client=(ClientDefinition("click", "button.buy"),))
    store.replace(Workflow(events={"Buy": rule, "Plain": EventRule()}))
    data = json.loads(redis_client.hget(KEYS.workflow, "workflow"))
    assert data["events"]["Buy"]["collect"] == "client"
    assert data["events"]["Buy"]["client"] == [{"on": "click", "selector": "button.buy"}]
    assert set(data["events"]["Plain"]) == {"enabled", "require_url", "trigger_paths"}
    store.set_enabled("Buy", False)
    assert store.get().events["Buy"] == EventRule(
        enabled=False, collect="client", client=(ClientDefinition("click", "button.buy"),)
    )


def test_another_replica_sees_a_change_at_once(redis_client: fakeredis.FakeRedis) -> None:
    """A second store on the same Redis reads a change on its very next get."""
    one, two = WorkflowStore(redis_client, KEYS), WorkflowStore(redis_client, KEYS)
    one.replace(CART)
    assert two.get() == CART
    one.set_enabled("Added to cart", False)
    assert two.get().events["Added to cart"].enabled is False


def test_set_enabled_keeps_the_rest_of_the_rule(store: WorkflowStore) -> None:
    """Disabling an event keeps its callback and trigger paths."""
    store.replace(CART)
    changed = store.set_enabled("Added to cart", False)
    assert changed.events["Added to cart"] == EventRule(
        enabled=False,
        callback="a.b:c",
        trigger_paths=(TriggerPath("/checkout/*", "glob", "dont_fire"),),
    )
    assert store.get() == changed


def test_set_enabled_adds_an_unlisted_event(store: WorkflowStore) -> None:
    """Enabling an event the workflow does not list adds a bare rule for it."""
    store.replace(CART)
    store.set_enabled("Trial started", True)
    assert store.get().events["Trial started"] == EventRule(enabled=True)
    assert store.get().events["Added to cart"] == CART.events["Added to cart"]


def test_set_enabled_with_nothing_stored(store: WorkflowStore) -> None:
    """Toggling before any workflow is stored starts from the empty default."""
    store.set_enabled("X", True)
    assert store.get() == Workflow("off", "Page viewed", {"X": EventRule()})


def test_set_enabled_retries_after_a_concurrent_write(
    store: WorkflowStore, redis_client: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write between the read and the commit is not lost: the toggle is redone on top."""
    store.replace(CART)
    other = WorkflowStore(redis_client, KEYS)
    real_decode = store_module.decode
    calls = []

    def decode_and_interfere(raw: bytes | str) -> Workflow:
        calls.append(raw)
        if len(calls) == 1:
            other.set_enabled("Page viewed", True)
        return real_decode(raw)

    monkeypatch.setattr(store_module, "decode", decode_and_interfere)
    store.set_enabled("Added to cart", False)
    monkeypatch.undo()
    final = store.get()
    assert final.events["Page viewed"].enabled is True
    assert final.events["Added to cart"].enabled is False


def test_seed_stores_only_when_empty(store: WorkflowStore) -> None:
    """seed stores the first workflow and leaves an existing one alone."""
    assert store.seed(CART) is True
    assert store.seed(Workflow(default="on")) is False
    assert store.get() == CART
    assert store.version() == 1


def test_get_parses_an_unchanged_workflow_once(
    store: WorkflowStore, redis_client: fakeredis.FakeRedis
) -> None:
    """Repeated gets of the same stored text return the same parsed object."""
    store.replace(CART)
    assert store.get() is store.get()
    assert WorkflowStore(redis_client, KEYS).get() is store.get()


def test_prefix_separates_relays(redis_client: fakeredis.FakeRedis) -> None:
    """Stores under different prefixes do not see each other's workflow."""
    WorkflowStore(redis_client, Keys("a")).replace(CART)
    assert WorkflowStore(redis_client, Keys("b")).get().events == {}


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1]", b'{"default": "sometimes"}'], ids=["json", "list", "invalid"]
)
def test_unreadable_stored_workflow_is_an_error(
    store: WorkflowStore, redis_client: fakeredis.FakeRedis, raw: bytes
) -> None:
    """A hand-broken stored workflow raises instead of silently turning every event off."""
    redis_client.hset(KEYS.workflow, "workflow", raw)
    with pytest.raises(WorkflowError, match="live workflow in Redis is unreadable"):
        store.get()


def test_seed_does_not_overwrite_an_unreadable_workflow(
    store: WorkflowStore, redis_client: fakeredis.FakeRedis
) -> None:
    """seed only looks at whether a workflow exists, never replacing a stored one."""
    redis_client.hset(KEYS.workflow, "workflow", b"broken")
    assert store.seed(CART) is False
    assert redis_client.hget(KEYS.workflow, "workflow") == b"broken"


def test_works_with_a_decoding_client() -> None:
    """A client created with decode_responses=True works the same."""
    store = WorkflowStore(fakeredis.FakeRedis(decode_responses=True), KEYS)
    store.replace(CART)
    assert store.get() == CART
    assert store.version() == 1
