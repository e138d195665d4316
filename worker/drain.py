"""One drain cycle: read entries, prepare them, deliver, and record every outcome in Redis.

This is the I/O edge around the pure stages: it owns the Redis round trips (one MGET of
remembered identities, one HMGET of attempts and one MULTI of outcomes per batch) and the
retry bookkeeping.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
import redis
import structlog

from worker import activity, catalogue, counters, pausing
from worker.backoff import backoff_s
from worker.client import TrackClient
from worker.delivery import NOT_SENT, Deliverer
from worker.dlq import Attempts, dead_letter_fields
from worker.errors import PauseDelivery, RetryLater
from worker.inbox import Entry, Inbox, defer, finish
from worker.keys import Keys
from worker.outcomes import RETRIES_EXHAUSTED, Outcome
from worker.prepare import Policy, needed_memories, parse_entries, route
from worker.ratelimit import SharedRateLimiter
from worker.redisconn import opt_text, stream_fields
from worker.settings import Settings
from worker.workflow.store import WorkflowStore

log = structlog.get_logger("cio_relay.drain")

PROBE_EVERY_S = 15.0
# Short reads linger for more entries only while the request budget is this busy.
LINGER_ABOVE_SHARE = 0.5
FORGET_CONSUMERS_AFTER_MS = 3_600_000
# A read whose oldest new entry waited longer than this in the inbox recruits a drain.
RECRUIT_AFTER_WAIT_S = 0.1
# The longest a drain blocks on a read or waits out a pause before looking again (and
# before noticing a warm shutdown).
WAIT_STEP_S = 0.25

# Append a batch's activity entries in one command: ARGV[2] is a JSON list of entries,
# each a flat [field, value, ...] list. One XADD per entry from the client, or one
# argument per field, cost more than the rest of a batch's bookkeeping together.
_ADD_ACTIVITY = """
local maxlen = ARGV[1]
for _, fields in ipairs(cjson.decode(ARGV[2])) do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', unpack(fields))
end
return 0
"""

# Remember a batch's learned identities in one command: KEYS are the identity keys,
# ARGV[1] the TTL, ARGV[i + 1] the identifier for KEYS[i], or "" to forget KEYS[i] (a
# deleted person). A SET per identity in the MULTI cost a queued command and a QUEUED
# reply each.
_REMEMBER = """
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
  if ARGV[i + 1] == '' then
    redis.call('DEL', key)
  else
    redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
  end
end
return 0
"""


def _never() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class DrainRun:
    """What one drain did: outcome counts, whether its last read still found entries
    (work is arriving: hand over to a successor), and the pause reason if paused."""

    counts: Counter[str]
    busy_at_end: bool
    paused: str | None


@dataclass(frozen=True, slots=True)
class DrainConfig:
    """The drain loop's knobs, from Settings."""

    batch_size: int = 500
    budget_s: float = 5.0
    reclaim_idle_s: float = 30.0
    max_attempts: int = 20
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0
    retry_after_cap_s: float = 900.0
    identity_ttl_s: int = 30 * 24 * 3600
    activity_max: int = 10_000
    linger_s: float = 0.1

    @classmethod
    def from_settings(cls, s: Settings) -> DrainConfig:
        return cls(
            batch_size=s.batch_size,
            budget_s=s.drain_budget_s,
            reclaim_idle_s=s.reclaim_idle_s,
            max_attempts=s.max_attempts,
            retry_base_s=s.retry_base_s,
            retry_cap_s=s.retry_cap_s,
            retry_after_cap_s=s.retry_after_cap_s,
            identity_ttl_s=s.identity_ttl_s,
            activity_max=s.activity_max,
            linger_s=s.batch_linger_ms / 1000,
        )


class Drainer:
    """Moves events from the inbox to Customer.io for one consumer (one worker process)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        track: TrackClient,
        limiter: SharedRateLimiter,
        policy: Policy,
        config: DrainConfig,
        consumer: str,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._track = track
        self._limiter = limiter
        self._policy = policy
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self.inbox = Inbox(client, keys, consumer)
        self._workflows = WorkflowStore(client, keys)
        self._deliverer = Deliverer(track, limiter, self._note_request)
        self._request_notes: list[tuple[int | str, int, float]] = []
        self.inbox.ensure_group()

    # -- the cycle -----------------------------------------------------------------

    def drain(
        self,
        recruit: Callable[[], None] | None = None,
        *,
        listen_s: float = 0.0,
        stop: Callable[[], bool] = _never,
        alive: Callable[[float], None] | None = None,
    ) -> DrainRun:
        """Work for the time budget once there is work; until then listen for up to
        ``listen_s`` (at least the budget) with blocking reads; returns what it did.

        A long listen lets one drain wait on an idle inbox for many seconds, so an idle
        relay runs a few drain tasks a minute instead of one per beat tick, and still
        reads an arriving event at once. ``stop`` is asked between reads (each at most
        ``WAIT_STEP_S``), so a worker's warm shutdown ends a listening drain promptly;
        ``alive`` is called with the time at each step (the live-drains heartbeat).

        ``recruit`` is called once, the first time a read comes back full (a backlog) or
        finds an entry that waited over ``RECRUIT_AFTER_WAIT_S`` (too few readers): another
        drain should start on an idle worker process. Each recruited drain recruits at
        most one more, so a burst, or a steady rate arriving on a relay with one drain
        listening, reaches enough processes within a few batches instead of waiting for
        the beat's ticks, and never queues more drains than there are running ones.
        """
        totals: Counter[str] = Counter()
        started = self._clock()
        deadline = started + max(listen_s, self._config.budget_s)
        worked = False
        last_read = 0
        next_reclaim = started
        while not stop():
            now = self._clock()
            if now >= deadline:
                break
            if alive is not None:
                alive(now)
            if self.paused_reason() is not None:
                self._maybe_probe()
                self._sleep(min(WAIT_STEP_S, deadline - now))
                continue
            throttled = self._limiter.throttled_for()
            if throttled > 0:
                self._sleep(min(throttled, WAIT_STEP_S, deadline - now))
                continue
            if now >= next_reclaim:
                next_reclaim = now + self._config.reclaim_idle_s / 2
                found = self._reclaim()
                if found:
                    if not worked:
                        worked, deadline = True, min(deadline, now + self._config.budget_s)
                    totals += found
                    continue
            entries = self.inbox.claim_due(now, self._config.batch_size)
            if not entries:
                left_ms = int((deadline - now) * 1000)
                if left_ms <= 0:
                    break
                block_ms = min(int(WAIT_STEP_S * 1000), left_ms)
                entries = self.inbox.read_new(self._config.batch_size, block_ms=block_ms)
                if recruit is not None and self._needs_help(entries):
                    recruit()
                    recruit = None
                entries = self._top_up(entries, deadline)
            last_read = len(entries)
            if entries:
                if not worked:
                    worked = True
                    deadline = min(deadline, self._clock() + self._config.budget_s)
                totals += self.process(entries)
        return DrainRun(totals, last_read > 0, self.paused_reason())

    def _needs_help(self, entries: list[Entry]) -> bool:
        """A read of new entries that came back full (a backlog), or whose oldest entry
        waited in the inbox over ``RECRUIT_AFTER_WAIT_S`` (the running drains do not read
        arrivals at once): another drain should start on an idle worker process."""
        if len(entries) >= self._config.batch_size:
            return True
        return bool(entries) and self._clock() - _added_at(entries[0]) > RECRUIT_AFTER_WAIT_S

    def _reclaim(self) -> Counter[str]:
        """Take back and process what crashed consumers left pending (one replica per
        half re-claim window), and forget long-silent consumers."""
        if not self._take_lease(self._keys.lease("reclaim"), self._config.reclaim_idle_s / 2):
            return Counter()
        orphans = self.inbox.reclaim_orphans(
            int(self._config.reclaim_idle_s * 1000), self._config.batch_size
        )
        self.inbox.forget_idle_consumers(FORGET_CONSUMERS_AFTER_MS)
        if not orphans:
            return Counter()
        log.warning("orphans_reclaimed", entries=len(orphans))
        return self.process(orphans, crashed=True)

    def _top_up(self, entries: list[Entry], deadline: float) -> list[Entry]:
        """Let a short read wait ``linger_s`` for more entries while the request budget is
        more than half used, so that a busy relay sends fewer, fuller requests instead of
        spending the budget on small ones (and queueing behind it)."""
        wanted = self._config.batch_size - len(entries)
        if not entries or wanted <= 0 or self._config.linger_s <= 0:
            return entries
        if self._limiter.used_share() < LINGER_ABOVE_SHARE:
            return entries
        self._sleep(max(0.0, min(self._config.linger_s, deadline - self._clock())))
        return [*entries, *self.inbox.read_new(wanted)]

    def process(self, entries: Sequence[Entry], *, crashed: bool = False) -> Counter[str]:
        """Prepare, deliver and record one batch of entries."""
        batch_id = uuid.uuid4().hex[:12]
        with structlog.contextvars.bound_contextvars(batch_id=batch_id):
            started = self._clock()
            workflow = self._workflows.get()
            parsed, outcomes = parse_entries(entries, workflow, self._policy)
            wanted = needed_memories(parsed)
            remembered = self._remembered(wanted)
            prepared = route(parsed, workflow, remembered, self._policy)
            outcomes.extend(prepared.outcomes)
            send_deadline = self._clock() + max(self._config.budget_s, 10.0)
            outcomes.extend(self._deliverer.deliver(prepared.ready, send_deadline))
            final = self._settle(entries, outcomes, prepared.memories, crashed)
            counts = counters.outcome_counts(final)
            log.info(
                "batch",
                entries=len(entries),
                requests=len(self._request_notes),
                ms=round((self._clock() - started) * 1000, 1),
                **{k: v for k, v in counts.items() if ":" not in k},
            )
            self._request_notes.clear()
            return Counter({k: v for k, v in counts.items() if ":" not in k})

    # -- pause and resume ----------------------------------------------------------

    def paused_reason(self) -> str | None:
        return pausing.reason(self._redis, self._keys)

    def pause(self, reason: str) -> None:
        if self._redis.set(self._keys.paused, reason, nx=True):
            log.error("delivery_paused", reason=reason)

    def resume(self) -> bool:
        return bool(self._redis.delete(self._keys.paused))

    def _maybe_probe(self) -> None:
        """Check the credentials now and then while paused; resume when they work (never a
        pause a person made: only a person lifts that one)."""
        if pausing.is_by_hand(self.paused_reason()):
            return
        if not self._take_lease(self._keys.lease("probe"), PROBE_EVERY_S):
            return
        try:
            self._track.check_region()
        except PauseDelivery as exc:
            log.warning("probe_failed", status=exc.status, reason=str(exc))
            return
        except RetryLater as exc:
            log.warning("probe_failed", status=exc.status, reason=str(exc))
            return
        if self.resume():
            log.info("delivery_resumed", reason="credentials probe succeeded")

    # -- bookkeeping ------------------------------------------------------------------

    def _remembered(self, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        return remembered(self._redis, self._keys, wanted)

    def _settle(
        self,
        entries: Sequence[Entry],
        outcomes: list[Outcome],
        memories: dict[tuple[str, str], str],
        crashed: bool,
    ) -> list[Outcome]:
        """Apply every outcome in one MULTI; returns the outcomes as finally decided.

        Finished entries are acked, deleted and forgotten with three commands for the
        whole batch, and the activity entries appended with one, so the MULTI's size
        grows with the entries that need work of their own (retries, dead letters).
        """
        now = self._clock()
        by_id = {e.id: e for e in entries}
        # A re-claimed batch counts the crash as an attempt for every entry.
        tracked = (
            [e.id for e in entries]
            if crashed
            else [o.entry_id for o in outcomes if o.status in ("retry", "dead")]
        )
        stored = {}
        if tracked:
            stored = dict(
                zip(tracked, self._redis.hmget(self._keys.attempts, tracked), strict=True)
            )
        pipe = self._redis.pipeline(transaction=True)
        final: list[Outcome] = []
        finished: list[str] = []
        activity_rows: list[list[str]] = []
        seen: list[tuple[str | None, str]] = []  # (name, source kind) of finished events
        stamp = f"{now:.3f}"
        for o in outcomes:
            attempts = Attempts.decode(stored.get(o.entry_id), now)
            if crashed:
                attempts = attempts.failed(now)
            o, done, noted = self._apply(pipe, by_id[o.entry_id], o, attempts, now)
            if done:
                finished.append(o.entry_id)
                seen.append((o.name, by_id[o.entry_id].source_kind))
            if noted:
                activity_rows.append(activity.activity_row(o, stamp))
            final.append(o)
        finish(pipe, self._keys, finished)
        self._add_activity(pipe, activity_rows)
        self._remember(pipe, memories)
        catalogue.note(pipe, self._keys, seen, now)
        counters.add_counts(pipe, self._keys, counters.outcome_counts(final))
        counters.note_batch(pipe, self._keys, len(entries))
        for status, events, at in self._request_notes:
            counters.note_request(pipe, self._keys, at, status, events)
        pipe.execute()
        if any(o.status == "paused" for o in final):
            first = next(o for o in final if o.status == "paused")
            self.pause(first.detail)
        return final

    def _apply(
        self, pipe: redis.client.Pipeline, entry: Entry, o: Outcome, attempts: Attempts, now: float
    ) -> tuple[Outcome, bool, bool]:
        """Queue an outcome's own commands; returns it as decided, whether the entry is
        finished, and whether it belongs in the activity stream."""
        if o.status == "retry" and o.reason != NOT_SENT:
            attempts = attempts.failed(now)
            if attempts.count >= self._config.max_attempts:
                o = _exhausted(o)
            else:
                delay = backoff_s(
                    attempts.count,
                    base_s=self._config.retry_base_s,
                    cap_s=self._config.retry_cap_s,
                    retry_after_s=o.retry_after_s,
                    retry_after_cap_s=self._config.retry_after_cap_s,
                )
                pipe.hset(self._keys.attempts, entry.id, attempts.encode())
                defer(pipe, self._keys, entry.id, now + delay)
                return o, False, True
        if o.status in ("retry", "paused"):  # not sent: no attempt spent
            if attempts.count:
                pipe.hset(self._keys.attempts, entry.id, attempts.encode())
            defer(pipe, self._keys, entry.id, now + max(1.0, self._limiter.throttled_for()))
            return o, False, False
        if o.status == "dead":
            if o.http_status is not None and o.reason != RETRIES_EXHAUSTED:
                attempts = attempts.failed(now)
            pipe.xadd(self._keys.dlq, stream_fields(dead_letter_fields(entry, o, attempts, now)))
            log.warning(
                "dead_lettered",
                inbox_id=entry.id,
                event_id=o.event_id,
                name=o.name,
                reason=o.reason,
                detail=o.detail,
                status=o.http_status,
            )
        elif o.status == "skipped":
            log.info(
                "skipped", inbox_id=entry.id, event_id=o.event_id, name=o.name, reason=o.reason
            )
        return o, True, True

    def _add_activity(self, pipe: redis.client.Pipeline, rows: list[list[str]]) -> None:
        """Queue one command appending ``rows`` (flat field/value lists) to the capped
        activity stream, in order."""
        if not rows:
            return
        args = (self._config.activity_max, orjson.dumps(rows))
        pipe.eval(_ADD_ACTIVITY, 1, self._keys.activity, *args)

    def _remember(self, pipe: redis.client.Pipeline, memories: dict[tuple[str, str], str]) -> None:
        """Queue one command storing every learned identity with the identity TTL."""
        if not memories:
            return
        keys = [self._keys.identity(kind, value) for kind, value in memories]
        pipe.eval(_REMEMBER, len(keys), *keys, self._config.identity_ttl_s, *memories.values())

    def _note_request(self, status: int | str, events: int) -> None:
        self._request_notes.append((status, events, self._clock()))

    def _take_lease(self, key: str, seconds: float) -> bool:
        """True for one replica per period: a SET NX with expiry."""
        return bool(self._redis.set(key, "1", nx=True, px=max(1, int(seconds * 1000))))


def _added_at(entry: Entry) -> float:
    """When Redis added the entry to the inbox (its stream id's milliseconds), in seconds."""
    return int(entry.id.split("-", 1)[0]) / 1000


def _exhausted(o: Outcome) -> Outcome:
    return Outcome(
        o.entry_id,
        "dead",
        RETRIES_EXHAUSTED,
        f"gave up after repeated failures; last: {o.detail}",
        event_id=o.event_id,
        name=o.name,
        identifier=o.identifier,
        http_status=o.http_status,
        excerpt=o.excerpt,
    )


def remembered(
    client: redis.Redis, keys: Keys, wanted: list[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The identities Redis remembers for these (kind, id) pairs, in one MGET: what the
    drain and the console's dry run both hand to ``prepare.route``."""
    if not wanted:
        return {}
    values = client.mget([keys.identity(kind, v) for kind, v in wanted])
    return {key: text for key, val in zip(wanted, values, strict=True) if (text := opt_text(val))}
