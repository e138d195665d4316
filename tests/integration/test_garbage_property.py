"""Property: whatever a producer pushes with a raw XADD, the good events get through, every
bad entry ends up in the DLQ with a reason, and the worker stays up.

Hypothesis builds each batch (about a hundred entries: good events with odd Unicode in
their properties, mixed with garbage of every kind) and the batches go to one running
relay, so the property is checked over real processes without starting a relay per example.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import Relay, wait_until
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys
from worker.producer import DEFAULT_MAX_EVENT_BYTES

pytestmark = pytest.mark.integration

Fields = dict[bytes, bytes]


@dataclass(frozen=True)
class Bad:
    """A garbage inbox entry and the DLQ reasons it may be given."""

    fields: Fields
    reasons: frozenset[str]


def good_event(tag: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Purchased",
        "userId": f"user-{tag}",
        "messageId": tag,
        "timestamp": "2026-03-02T10:15:00Z",
        "context": {"traits": {"email": "prop@example.com"}},
        "properties": props,
    }


def as_entry(value: Any) -> Fields:
    return {b"event": json.dumps(value, ensure_ascii=False).encode()}


def bad(reasons: str) -> Callable[[Fields], Bad]:
    return lambda fields: Bad(fields, frozenset(reasons.split()))


def parses_to_container(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw.decode("utf-8-sig")), dict | list)
    except (ValueError, RecursionError):
        return False


# -- building blocks ---------------------------------------------------------------------

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
not_a_string = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(json_leaf, max_size=3),
    st.dictionaries(st.text(max_size=5), json_leaf, max_size=3),
)
not_an_object = st.one_of(
    st.booleans(), st.integers(), st.text(max_size=10), st.lists(json_leaf, max_size=3)
)
unknown_word = st.text(max_size=12).map(lambda s: "x-" + s)
good_props = st.dictionaries(
    st.sampled_from(["note", "name", "city", "emoji", "rtl", "mixed"]),
    st.text(max_size=40),
    max_size=4,
)
# Bytes that are not UTF-8: lone surrogates as CESU/WTF-8 bytes, stray continuation and
# lead bytes, overlong forms, 0xFF.
not_utf8 = st.one_of(
    st.integers(0xD800, 0xDFFF).map(lambda c: chr(c).encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [b"\x80", b"\xbf", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf8\x88\x80\x80\x80", b"\xff", b"\xc3"]
    ),
)

# -- garbage, by kind --------------------------------------------------------------------

no_event_field = st.dictionaries(
    st.one_of(
        st.binary(max_size=12), st.sampled_from([b"received_at", b"Event", b"event "])
    ).filter(lambda k: k != b"event"),
    st.binary(max_size=60),
    min_size=1,
    max_size=4,
).map(bad("missing_field"))

random_bytes = (
    st.one_of(st.binary(max_size=120), st.text(max_size=80).map(str.encode))
    .filter(lambda b: not parses_to_container(b))
    .map(lambda b: bad("invalid_json not_an_object")({b"event": b}))
)
scalars = json_leaf.map(lambda v: bad("not_an_object")(as_entry(v)))
bad_queue_arrays = st.one_of(
    st.just([]),
    st.tuples(st.none() | not_a_string, st.lists(json_value, max_size=3)).map(
        lambda t: [t[0], *t[1]]
    ),
    st.tuples(unknown_word, st.lists(json_value, max_size=2)).map(lambda t: [t[0], *t[1]]),
).map(lambda v: bad("missing_field invalid_field")(as_entry(v)))
unknown_shape = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in ("method", "type")), json_value, max_size=5
).map(lambda v: bad("unknown_shape")(as_entry(v)))
wrong_types = st.one_of(
    st.builds(lambda v: {"type": v}, st.none() | not_a_string | unknown_word),
    st.builds(lambda v: {"method": v}, st.none() | not_a_string | unknown_word),
    st.builds(lambda v: {**good_event("w", {}), "event": v}, st.none() | not_a_string),
    st.builds(lambda v: {**good_event("w", {}), "properties": v}, not_an_object),
    st.builds(lambda v: {**good_event("w", {}), "context": v}, not_an_object),
    st.builds(lambda v: {**good_event("w", {}), "timestamp": v}, unknown_word),
).map(lambda v: bad("missing_field invalid_field invalid_timestamp")(as_entry(v)))


def nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = {"a": leaf}
    return leaf


# Each under the size limit, so the nesting, not the size, is what fails.
deep = st.one_of(
    st.integers(1_100, 16_000).map(lambda n: bad("invalid_json")({b"event": b"[" * n + b"]" * n})),
    st.integers(1_100, 5_000).map(
        lambda n: bad("invalid_json")({b"event": b'{"a":' * n + b"1" + b"}" * n})
    ),
    st.integers(65, 900).map(
        lambda n: bad("invalid_field")(as_entry(good_event("deep", {"p": nested(n, 1)})))
    ),
)
invalid_utf8 = st.tuples(st.text(max_size=10), not_utf8, st.text(max_size=10)).map(
    lambda t: bad("invalid_json")(
        {
            b"event": json.dumps(good_event("utf8", {"note": "@@"}))
            .encode()
            .replace(b"@@", t[0].encode() + t[1] + t[2].encode())
        }
    )
)
oversized = st.tuples(st.characters(codec="utf-8"), st.integers(0, 60_000)).map(
    lambda t: bad("too_large")(
        as_entry(good_event("big", {"blob": t[0] * (DEFAULT_MAX_EVENT_BYTES + t[1])}))
    )
)


def escaped_surrogate(where: str) -> Fields:
    """A valid-JSON event whose ``\\ud83d`` escape decodes to a lone surrogate."""
    event = good_event(f"sur-{where}", {"note": "ok"})
    text = json.dumps(event)
    spots = {
        "messageId": ('"sur-messageId"', '"sur-\\ud83d"'),
        "property value": ('"ok"', '"\\udc00"'),
        "property key": ('"note"', '"\\ud800"'),
        "email": ('"prop@example.com"', '"prop\\udfff@example.com"'),
    }
    old, new = spots[where]
    return {b"event": text.replace(old, new).encode()}


SURROGATE_SPOTS = ("messageId", "property value", "property key", "email")
escaped_surrogates = st.sampled_from(SURROGATE_SPOTS).map(
    lambda w: bad("invalid_json invalid_field")(escaped_surrogate(w))
)
garbage = st.one_of(
    no_event_field,
    random_bytes,
    scalars,
    bad_queue_arrays,
    unknown_shape,
    wrong_types,
    deep,
    invalid_utf8,
    oversized,
    escaped_surrogates,
)

other_fields = st.dictionaries(
    st.binary(max_size=10).filter(lambda k: k not in (b"event", b"received_at")),
    st.binary(max_size=30),
    max_size=2,
)

_batches = itertools.count()


@settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: each run is slow
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_garbage_never_blocks_good_events(
    relay: Relay, emulator_client: EmulatorClient, data: st.DataObject
) -> None:
    """Good events with odd Unicode all delivered; each bad entry dead-lettered with a
    fitting reason and the raw bytes kept; the inbox empty; no process down."""
    keys = Keys(relay.prefix)
    batch = next(_batches)
    props = data.draw(st.lists(good_props, min_size=30, max_size=50), label="good events")
    goods = [good_event(f"p{batch}-{i}", p) for i, p in enumerate(props)]
    bads = data.draw(st.lists(garbage, min_size=40, max_size=60), label="garbage")
    # Producers may add fields of their own next to ``event``; the relay ignores them.
    extras = st.lists(
        other_fields, min_size=len(goods) + len(bads), max_size=len(goods) + len(bads)
    )
    more = data.draw(extras, label="extra fields")
    items: list[Fields | Bad] = [{**more[i], **as_entry(g)} for i, g in enumerate(goods)]
    items += [Bad({**more[len(goods) + i], **b.fields}, b.reasons) for i, b in enumerate(bads)]
    order = data.draw(st.permutations(range(len(items))), label="order")

    dlq_before = relay.redis.xlen(keys.dlq)
    bad_ids: dict[str, Bad] = {}
    for i in order:
        item = items[i]
        fields = item.fields if isinstance(item, Bad) else item
        entry_id = relay.redis.xadd(keys.inbox, fields).decode()
        if isinstance(item, Bad):
            bad_ids[entry_id] = item

    wanted = {event_ulid(f"msg:p{batch}-{i}") for i in range(len(goods))}

    def delivered() -> set[str]:
        return {e["id"] for e in emulator_client.events()}

    def settled() -> bool:
        return relay.redis.xlen(keys.dlq) >= dlq_before + len(bads) and wanted <= delivered()

    wait_until(settled, 60, f"batch {batch}: {len(goods)} good events and {len(bads)} dead letters")
    assert wanted <= delivered()
    letters = relay.redis.xrange(keys.dlq)[dlq_before:]
    by_entry = {f[b"inbox_id"].decode(): f for _, f in letters}
    assert set(by_entry) == set(bad_ids), "a good event was dead-lettered or a bad one twice"
    for entry_id, item in bad_ids.items():
        letter = by_entry[entry_id]
        reason = letter[b"reason"].decode()
        assert reason in item.reasons, (reason, letter[b"detail"], item.fields)
        assert letter[b"detail"], item.fields
        raw = item.fields.get(b"event")
        if raw is not None:
            assert letter[b"raw"] == raw.decode("utf-8", "replace").encode()
        else:
            assert letter[b"raw_kind"] == b"fields"
    assert relay.redis.xlen(keys.inbox) == 0
    assert all(p.poll() is None for p in relay.procs), "a relay process died"


def test_entries_that_crash_preparation_do_not_hold_up_their_batch(
    relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path
) -> None:
    """One batch: 20 good events, four with escaped lone surrogates and two good events
    with a non-finite ``received_at`` field. The surrogate ones are dead-lettered alone;
    the rest (the received_at ones fall back to the entry id's time) are delivered."""
    relay = Relay({**relay_env, "CIO_BATCH_SIZE": "100"}, tmp_path)
    keys = Keys(relay.prefix)
    entries = [as_entry(good_event(f"crash-{i}", {"n": i})) for i in range(20)]
    entries += [escaped_surrogate(where) for where in SURROGATE_SPOTS]
    for i, stamp in enumerate((b"inf", b"1e400")):
        entries.append({**as_entry(good_event(f"stamp-{i}", {})), b"received_at": stamp})
    for fields in entries:
        relay.redis.xadd(keys.inbox, fields)
    relay.start()
    try:
        wanted = {event_ulid(f"msg:crash-{i}") for i in range(20)}
        wanted |= {event_ulid(f"msg:stamp-{i}") for i in range(2)}
        wait_until(
            lambda: (
                relay.redis.xlen(keys.dlq) >= len(SURROGATE_SPOTS)
                and len(emulator_client.events()) >= len(wanted)
            ),
            20,
            "the batch to settle",
        )
        assert {e["id"] for e in emulator_client.events()} == wanted
        letters = relay.redis.xrange(keys.dlq)
        assert len(letters) == len(SURROGATE_SPOTS)
        assert all(f[b"reason"] in (b"invalid_json", b"invalid_field") for _, f in letters)
        assert relay.redis.xlen(keys.inbox) == 0
    finally:
        relay.stop()
