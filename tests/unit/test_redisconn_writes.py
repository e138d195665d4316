"""Writes all or nothing, WAIT for replicas, and the words for a refused write (pure parts)."""

from __future__ import annotations

import pytest
import redis.exceptions

from worker.redisconn import (
    Durability,
    TooFewReplicas,
    describe_refusal,
    stream_add_commands,
    stream_add_results,
)

ENTRIES = [{"event": b"{}"}, {"event": b"[]", "source": "web"}]


def test_commands_wrap_the_entries_in_one_transaction_without_wait_by_default() -> None:
    assert stream_add_commands("in", ENTRIES, Durability()) == [
        ("MULTI",),
        ("XADD", "in", "*", "event", b"{}"),
        ("XADD", "in", "*", "event", b"[]", "source", "web"),
        ("EXEC",),
    ]


def test_wait_follows_exec_when_replicas_must_confirm() -> None:
    commands = stream_add_commands("in", ENTRIES[:1], Durability(2, 1.5), with_length=True)
    assert commands[-3:] == [("XLEN", "in"), ("EXEC",), ("WAIT", 2, 1500)]


def test_results_are_exec_replies_once_enough_replicas_confirm() -> None:
    replies = [b"OK", b"QUEUED", b"QUEUED", [b"1-0", b"1-1"], 2]
    assert stream_add_results(replies, Durability(2, 1)) == [b"1-0", b"1-1"]
    assert stream_add_results(replies[:-1], Durability()) == [b"1-0", b"1-1"]


def test_too_few_replicas_is_an_error_naming_replicas() -> None:
    replies = [b"OK", b"QUEUED", [b"1-0"], 0]
    with pytest.raises(TooFewReplicas, match="only 0 of 1 replica") as caught:
        stream_add_results(replies, Durability(1, 5))
    assert "CIO_REDIS_MIN_REPLICAS" in str(caught.value)
    assert isinstance(caught.value, redis.exceptions.RedisError)


def test_a_refused_command_is_raised_rather_than_execabort() -> None:
    oom = redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    abort = redis.exceptions.ExecAbortError("Transaction discarded because of previous errors.")
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        stream_add_results([b"OK", oom, abort, 1], Durability(1, 1))
    with pytest.raises(redis.exceptions.ExecAbortError):
        stream_add_results([b"OK", b"QUEUED", abort], Durability())
    inner = redis.exceptions.ResponseError("WRONGTYPE")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        stream_add_results([b"OK", b"QUEUED", [inner]], Durability())


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (redis.exceptions.OutOfMemoryError("command not allowed"), "OOM: out of memory"),
        (
            redis.exceptions.ResponseError(
                "MISCONF Redis is configured to save RDB snapshots, but it's currently unable"
            ),
            "MISCONF: it cannot persist",
        ),
        (
            redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
            "READONLY",
        ),
        (redis.exceptions.ResponseError("NOREPLICAS Not enough good replicas"), "NOREPLICAS"),
        (redis.exceptions.ConnectionError("Connection refused"), "Redis is unreachable"),
        (TooFewReplicas("not acknowledged: only 0 of 1 replica(s)"), "only 0 of 1 replica"),
    ],
)
def test_refusals_are_named_by_their_cause(error: Exception, words: str) -> None:
    assert words in describe_refusal(error)
