"""The inbox stream and its consumer group: reading, re-claiming, deferring, finishing.

Entries stay in the group's pending list until their outcome is final, which gives
at-least-once delivery. An entry waiting for a retry is handed to the pseudo-consumer
``__retry__`` (so it is never mistaken for an orphan) and its due time kept in a sorted
set; an entry left pending by a crashed worker is re-claimed once it has been idle for
``reclaim_idle_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis

from worker.keys import CONSUMER_GROUP, Keys
from worker.redisconn import StreamRow, as_text, read_rows, stream_rows

RETRY_CONSUMER = "__retry__"

# Atomically take the ids whose retry is due, so two replicas never take the same one.
_POP_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
"""


@dataclass(slots=True)
class Entry:
    """One inbox stream entry as read: its id and its raw fields."""

    id: str
    fields: dict[bytes, bytes]

    @property
    def received_at(self) -> int:
        """When it entered the inbox (Unix seconds): a replay's stamp, else the id's time.

        A stamp is only believed when it is a finite time between 2000 and the entry's own
        id time (a replay's original arrival is always earlier than its re-add).
        """
        added = int(self.id.split("-", 1)[0]) // 1000
        stamp = self.fields.get(b"received_at")
        if stamp is not None:
            try:
                value = float(stamp)
            except ValueError:
                return added
            if _EARLIEST_STAMP <= value <= added:  # False for nan and infinities
                return int(value)
        return added

    @property
    def source_kind(self) -> Literal["client", "server"]:
        """The kind of source that sent it: "client" only when the collector says so.

        The collector writes ``source_kind``; an entry without it was XADDed by a backend,
        and any other value counts as "server" too, so only a browser's copy is "client".
        """
        return "client" if self.fields.get(b"source_kind") == b"client" else "server"


_EARLIEST_STAMP = 946_684_800.0  # 2000-01-01T00:00:00Z


class Inbox:
    """The consumer side of ``<prefix>:inbox`` for one named consumer."""

    def __init__(self, client: redis.Redis, keys: Keys, consumer: str) -> None:
        self._redis = client
        self._keys = keys
        self.consumer = consumer
        self._pop_due = client.register_script(_POP_DUE)

    def ensure_group(self) -> None:
        """Create the stream and the consumer group if they do not exist yet."""
        ensure_group(self._redis, self._keys)

    def read_new(self, count: int, block_ms: int | None = None) -> list[Entry]:
        """Entries never delivered to any consumer of the group."""
        reply = self._redis.xreadgroup(
            CONSUMER_GROUP, self.consumer, {self._keys.inbox: ">"}, count=count, block=block_ms
        )
        return [_entry(row) for _, rows in read_rows(reply) for row in rows]

    def claim_due(self, now: float, count: int) -> list[Entry]:
        """Entries whose retry time has come, claimed for this consumer."""
        ids: list[Any] = list(self._pop_due(keys=[self._keys.retry_due], args=[now, count]) or [])
        if not ids:
            return []
        claimed = self._redis.xclaim(
            self._keys.inbox, CONSUMER_GROUP, self.consumer, min_idle_time=0, message_ids=ids
        )
        return [_entry(row) for row in stream_rows(claimed)]

    def reclaim_orphans(self, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries left pending by consumers that stopped (crashed or killed) mid-batch.

        This consumer's own idle entries count too: a process drains one batch at a time,
        so when a drain starts, anything it still holds was left by an earlier drain that
        failed (with a single worker process nobody else would ever take it back).
        """
        found: list[Entry] = []
        for info in self._redis.xinfo_consumers(self._keys.inbox, CONSUMER_GROUP):
            name = as_text(info["name"])
            if name == RETRY_CONSUMER or not info.get("pending"):
                continue
            stale = self._redis.xpending_range(
                self._keys.inbox,
                CONSUMER_GROUP,
                "-",
                "+",
                count,
                consumername=name,
                idle=min_idle_ms,
            )
            ids: list[Any] = [p["message_id"] for p in stale]
            if ids:
                claimed = self._redis.xclaim(
                    self._keys.inbox,
                    CONSUMER_GROUP,
                    self.consumer,
                    min_idle_time=min_idle_ms,
                    message_ids=ids,
                )
                found.extend(_entry(row) for row in stream_rows(claimed))
            if len(found) >= count:
                break
        return found

    def forget_idle_consumers(self, idle_ms: int) -> int:
        """Remove consumers with nothing pending that have been silent for ``idle_ms``."""
        removed = 0
        for info in self._redis.xinfo_consumers(self._keys.inbox, CONSUMER_GROUP):
            name = as_text(info["name"])
            if name == RETRY_CONSUMER or info.get("pending") or info.get("idle", 0) < idle_ms:
                continue
            self._redis.xgroup_delconsumer(self._keys.inbox, CONSUMER_GROUP, name)
            removed += 1
        return removed

    def depth(self) -> dict[str, int]:
        """Entries in the stream, pending in the group, and not yet read by anyone."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.xlen(self._keys.inbox)
        pipe.xpending(self._keys.inbox, CONSUMER_GROUP)
        pipe.zcard(self._keys.retry_due)
        try:
            length, pending, waiting = pipe.execute()
        except redis.ResponseError:  # no group yet
            return {"length": 0, "pending": 0, "unread": 0, "waiting_retry": 0}
        pending_count = int(pending["pending"]) if pending else 0
        return {
            "length": int(length),
            "pending": pending_count,
            "unread": max(0, int(length) - pending_count),
            "waiting_retry": int(waiting),
        }


def ensure_group(client: redis.Redis, keys: Keys) -> None:
    """Create ``<prefix>:inbox`` and its ``relay`` group (idempotent)."""
    try:
        client.xgroup_create(keys.inbox, CONSUMER_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def finish(pipe: redis.client.Pipeline, keys: Keys, entry_ids: Sequence[str]) -> None:
    """Queue the commands that end entries' life in the inbox (ack, delete, forget retries):
    three commands however many entries, so a batch costs the same few round-trip items."""
    if not entry_ids:
        return
    pipe.xack(keys.inbox, CONSUMER_GROUP, *entry_ids)
    pipe.xdel(keys.inbox, *entry_ids)
    pipe.hdel(keys.attempts, *entry_ids)


def defer(pipe: redis.client.Pipeline, keys: Keys, entry_id: str, due: float) -> None:
    """Queue the commands that park an entry until ``due`` (it stays pending, never lost)."""
    pipe.zadd(keys.retry_due, {entry_id: due})
    pipe.xclaim(
        keys.inbox,
        CONSUMER_GROUP,
        RETRY_CONSUMER,
        min_idle_time=0,
        message_ids=[entry_id],
        justid=True,
    )


def _entry(row: StreamRow) -> Entry:
    return Entry(row[0], row[1])
