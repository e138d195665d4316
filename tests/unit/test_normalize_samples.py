"""The shipped sample event files normalise without error."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from worker.inbox import Entry
from worker.normalize import normalize, parse_json
from worker.prepare import Policy, parse_entries, route
from worker.workflow.loader import load_workflow_file

SAMPLES = Path(__file__).resolve().parents[2] / "config" / "samples"
RECEIVED_AT = 1_772_496_000  # 2026-03-03T00:00:00Z, after every sample's own timestamp


def lines(name: str) -> list[str]:
    """Return the non-blank lines of a sample file."""
    return [line for line in (SAMPLES / name).read_text("utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("name", "source"), [("customerlabs.jsonl", "customerlabs"), ("segment.jsonl", "segment")]
)
def test_every_sample_line_normalises(name: str, source: str) -> None:
    """Each line of the sample file parses and normalises, in its own shape."""
    events = [normalize(parse_json(line), received_at=RECEIVED_AT) for line in lines(name)]
    assert events
    assert {event.source for event in events} == {source}


@pytest.mark.parametrize("name", ["customerlabs.jsonl", "segment.jsonl"])
def test_samples_cover_every_kind(name: str) -> None:
    """Between them the samples exercise identify, page, track and group calls."""
    kinds = {normalize(parse_json(line), received_at=RECEIVED_AT).kind for line in lines(name)}
    assert {"identify", "page", "track", "group"} <= kinds


def test_customerlabs_samples_include_products_and_queue_entries() -> None:
    """The CustomerLabs samples carry product lists and the snippet's queue form."""
    raws = [parse_json(line) for line in lines("customerlabs.jsonl")]
    events = [normalize(raw, received_at=RECEIVED_AT) for raw in raws]
    assert any(event.properties.get("products") for event in events)
    assert any(isinstance(raw, list) for raw in raws)


def test_sample_dedupe_keys_are_unique() -> None:
    """No two sample events share a de-duplication key."""
    keys = [
        normalize(parse_json(line), received_at=RECEIVED_AT).dedupe_key
        for name in ("customerlabs.jsonl", "segment.jsonl")
        for line in lines(name)
    ]
    assert len(keys) == len(set(keys))


SPEC_SAMPLES = ("segment-spec.jsonl", "customerlabs-spec.jsonl")


@pytest.mark.parametrize("name", SPEC_SAMPLES)
def test_spec_samples_become_their_operations(name: str) -> None:
    """Under the example workflow, every spec sample prepares into an operation (none is
    dead-lettered), and between them they show every spec operation."""
    workflow = load_workflow_file(SAMPLES.parent / "workflow.toml")
    entries = [
        Entry(id=f"{RECEIVED_AT * 1000 + i}-0", fields={b"event": line.encode()})
        for i, line in enumerate(lines(name))
    ]
    policy = Policy()
    parsed, dead = parse_entries(entries, workflow, policy)
    assert dead == []
    prepared = route(parsed, workflow, {}, policy)
    assert [(o.status, o.reason) for o in prepared.outcomes if o.status == "dead"] == []
    actions = {orjson.loads(r.operation.encoded).get("action") for r in prepared.ready}
    if name == "segment-spec.jsonl":
        assert {
            "identify",
            "identify_anonymous",
            "merge",
            "add_device",
            "delete_device",
            "delete_relationships",
            "delete",
            "suppress",
            "unsuppress",
            "event",
        } <= actions
    else:
        assert {"identify", "event", "delete"} <= actions
