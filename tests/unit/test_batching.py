"""Tests for packing encoded operations into batch bodies."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from worker.batching import batch_body, pack

OVERHEAD = len(b'{"batch":[]}')


def _body_size(sizes: list[int]) -> int:
    return OVERHEAD + sum(sizes) + max(0, len(sizes) - 1)


def test_empty_input_gives_no_runs() -> None:
    """No operations means no requests."""
    assert pack([], max_bytes=100) == []


def test_everything_fits_in_one_run() -> None:
    """Operations that fit together stay in one run."""
    assert pack([10, 10, 10], max_bytes=100) == [range(0, 3)]


def test_exact_fit_stays_in_one_run() -> None:
    """A body exactly at the limit is not split."""
    assert pack([40, 40], max_bytes=_body_size([40, 40])) == [range(0, 2)]


def test_one_byte_over_splits() -> None:
    """A body one byte over the limit is split in two."""
    assert pack([40, 40], max_bytes=_body_size([40, 40]) - 1) == [range(0, 1), range(1, 2)]


def test_lone_oversized_operation_gets_its_own_run() -> None:
    """An operation bigger than the limit is sent alone rather than merged."""
    assert pack([5, 500, 5], max_bytes=100) == [range(0, 1), range(1, 2), range(2, 3)]


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=60), st.integers(20, 400))
def test_pack_keeps_order_and_respects_limit(sizes: list[int], max_bytes: int) -> None:
    """Runs cover every index in order, and only a lone operation may exceed the limit."""
    runs = pack(sizes, max_bytes=max_bytes)
    assert [i for run in runs for i in run] == list(range(len(sizes)))
    for run in runs:
        assert len(run) > 0
        if len(run) > 1:
            assert _body_size([sizes[i] for i in run]) <= max_bytes


def test_batch_body_is_valid_json() -> None:
    """The body joins encoded operations into a JSON object with a batch list."""
    ops = [b'{"a":1}', b'{"b":"\xc3\xa9"}']
    assert json.loads(batch_body(ops)) == {"batch": [{"a": 1}, {"b": "é"}]}


def test_batch_body_size_matches_pack_accounting() -> None:
    """The body's length is what pack assumes it will be."""
    ops = [b'{"a":1}', b'{"bb":2}', b"{}"]
    assert len(batch_body(ops)) == _body_size([len(o) for o in ops])
