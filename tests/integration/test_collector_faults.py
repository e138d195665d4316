"""The collector under faults, over real processes: bad input refused with its reason and
nothing stored, backpressure, Redis stopped, SIGKILL under load (every 200 delivered once),
SIGTERM with requests in flight, and no event content in its logs."""

from __future__ import annotations

import gzip
import json
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.integration.collector_proc import (
    CLIENT_KEY,
    ORIGIN,
    OTHER_ORIGIN,
    SERVER_KEY,
    Collector,
    RawRequest,
    basic,
    collector_env,
    inbox,
)
from tests.integration.conftest import Relay, free_port, inbox_empty, wait_until
from tests.integration.test_redis_restart import OwnRedis
from worker.emulator import EmulatorClient
from worker.ids import event_ulid
from worker.keys import Keys

pytestmark = pytest.mark.integration

MARKER = "SECRET-MARKER-7f3a9c"
REQUEST_LIMIT = 512_000  # the default CIO_COLLECT_MAX_REQUEST_BYTES
MiB = 1024 * 1024


def purchase(message_id: str, **extra: Any) -> dict[str, Any]:
    """A track call the test workflow delivers (Purchased, with a person to attribute)."""
    return {
        "type": "track",
        "event": "Purchased",
        "userId": f"user-{hash(message_id) % 5}",
        "messageId": message_id,
        "context": {"traits": {"email": f"buyer{hash(message_id) % 5}@example.com"}},
        "properties": {"order": message_id},
        **extra,
    }


@dataclass
class Target:
    """A running collector and the inbox it writes to."""

    collector: Collector
    redis_url: str
    prefix: str
    redis: redis.Redis = field(init=False)

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.redis_url)

    @property
    def url(self) -> str:
        return self.collector.url

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return requests.post(f"{self.url}{path}", data=data, timeout=30, **kwargs)

    def inbox_len(self) -> int:
        return int(self.redis.xlen(Keys(self.prefix).inbox))


@pytest.fixture
def spawn(redis_server: str, tmp_path: Path) -> Iterator[Any]:
    """Starts collectors for one test (fresh prefix each) and kills them all afterwards."""
    started: list[Collector] = []

    def start(
        redis_url: str = redis_server, prefix: str | None = None, workers: int = 1, **env: str
    ) -> Target:
        prefix = prefix or f"cf{os.getpid()}x{free_port()}"
        logdir = tmp_path / f"c{len(started)}"
        logdir.mkdir()
        collector = Collector(
            collector_env(redis_url, prefix, logdir, **env), logdir, workers=workers
        )
        started.append(collector)
        collector.start()
        return Target(collector, redis_url, prefix)

    yield start
    for collector in started:
        collector.kill()


@pytest.fixture(scope="module")
def shared(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One collector for the bad-input cases (each asserts the inbox stays empty)."""
    logdir = tmp_path_factory.mktemp("collector-faults")
    prefix = f"cfs{os.getpid()}x{free_port()}"
    collector = Collector(collector_env(redis_server, prefix, logdir), logdir).start()
    try:
        yield Target(collector, redis_server, prefix)
    finally:
        collector.kill()


@pytest.fixture
def target(shared: Target) -> Target:
    shared.redis.delete(Keys(shared.prefix).inbox)
    return shared


def refused(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a refusal's status and JSON shape; return its body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "code", "message"}, body
    assert body["success"] is False
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def raw_refused(answer: tuple[int, dict[str, str], bytes], status: int, code: str) -> None:
    got, _headers, body = answer
    assert got == status, body
    parsed = json.loads(body)
    assert (parsed["success"], parsed["code"]) == (False, code), parsed


# Bad input: each refused with its status and reason, nothing stored.


def test_invalid_json_is_400(target: Target) -> None:
    body = b'{"userId": "u1", "event": "' + MARKER.encode() + b'", '
    refused(target.post("/v1/track", body, headers=basic(SERVER_KEY)), 400, "invalid_json")
    refused(target.post("/v1/track", b"", headers=basic(SERVER_KEY)), 400, "invalid_json")
    assert target.inbox_len() == 0


def test_a_body_that_is_not_an_object_is_400(target: Target) -> None:
    for body in ([purchase("m1")], "track", 42):
        response = target.post(f"/v1/track?writeKey={SERVER_KEY}", body)
        refused(response, 400, "invalid_body")
    refused(
        target.post(f"/v1/batch?writeKey={SERVER_KEY}", {"batch": {"a": 1}}), 400, "invalid_body"
    )
    assert target.inbox_len() == 0


def test_one_bad_item_refuses_the_batch_naming_its_index(target: Target) -> None:
    batch = [
        purchase("ok-0"),
        purchase("ok-1"),
        {"type": "track", "userId": "u1"},
        purchase("ok-3"),
    ]
    body = refused(
        target.post("/v1/batch", {"batch": batch}, headers=basic(SERVER_KEY)), 400, "invalid_event"
    )
    assert "event 2" in body["message"]
    not_object = [purchase("ok-0"), "just text"]
    body = refused(
        target.post("/v1/batch", {"batch": not_object}, headers=basic(SERVER_KEY)),
        400,
        "invalid_event",
    )
    assert "event 1" in body["message"]
    assert target.inbox_len() == 0


def test_an_event_over_32_kb_is_413(target: Target) -> None:
    big = purchase("big", properties={"blob": MARKER + "x" * 33_000})
    body = refused(target.post("/v1/track", big, headers=basic(SERVER_KEY)), 413, "event_too_large")
    assert "event 0" in body["message"]
    batch = {"batch": [purchase("small"), big]}
    body = refused(
        target.post("/v1/batch", batch, headers=basic(SERVER_KEY)), 413, "event_too_large"
    )
    assert "event 1" in body["message"]
    assert target.inbox_len() == 0


def test_a_request_over_the_limit_is_413_with_or_without_content_length(target: Target) -> None:
    """Declared too large: refused on its headers. Chunked (no length): cut off once past
    the limit, the rest never read."""
    headers = {**basic(SERVER_KEY), "Content-Type": "application/json"}
    declared = RawRequest(
        target.collector.port, "/v1/batch", {**headers, "Content-Length": "600000"}
    )
    raw_refused(declared.response(), 413, "request_too_large")

    chunked = RawRequest(
        target.collector.port, "/v1/batch", {**headers, "Transfer-Encoding": "chunked"}
    )
    item = json.dumps(purchase("chunk")).encode()
    sent = 0
    chunked.send_chunk(b'{"batch": [' + item)
    while sent < REQUEST_LIMIT + 64 * 1024 and chunked.send_chunk(b", " + item):
        sent += len(item) + 2
    raw_refused(chunked.response(), 413, "request_too_large")
    assert target.inbox_len() == 0


def test_a_gzip_bomb_is_413_and_memory_stays_small(target: Target) -> None:
    """488 MiB of zeros in under the request limit, and 1 GiB chunked: refused, and the
    server's peak RSS barely moves."""
    (pid,) = target.collector.pids()
    before = _peak_rss(pid)
    bomb = _zeros_gzip(488 * MiB)
    assert len(bomb) < REQUEST_LIMIT
    headers = {**basic(SERVER_KEY), "Content-Encoding": "gzip"}
    body = refused(target.post("/v1/batch", bomb, headers=headers), 413, "request_too_large")
    assert "inflates" in body["message"]  # the inflater's bound, not the body's, refused it

    big_bomb = _zeros_gzip(1024 * MiB, trailer=False)
    chunked = RawRequest(
        target.collector.port, "/v1/batch", {**headers, "Transfer-Encoding": "chunked"}
    )
    for start in range(0, len(big_bomb), 64 * 1024):
        if not chunked.send_chunk(big_bomb[start : start + 64 * 1024]):
            break
    raw_refused(chunked.response(), 413, "request_too_large")
    grown = _peak_rss(pid) - before
    assert grown < 64 * MiB, f"peak RSS grew by {grown / MiB:.0f} MiB"
    assert target.inbox_len() == 0


def test_truncated_gzip_is_400(target: Target) -> None:
    whole = gzip.compress(json.dumps({"batch": [purchase("gz")] * 50}).encode())
    headers = {**basic(SERVER_KEY), "Content-Encoding": "gzip"}
    refused(
        target.post("/v1/batch", whole[: len(whole) // 2], headers=headers), 400, "invalid_encoding"
    )
    refused(target.post("/v1/batch", b"not gzip at all", headers=headers), 400, "invalid_encoding")
    assert target.inbox_len() == 0


def test_gzip_with_more_after_its_first_member_is_never_half_read(target: Target) -> None:
    """Two gzip members (RFC 1952 allows it; ``gzip.decompress`` reads both), or a member
    followed by junk: either every event is stored or the request is refused; a 200 that
    stored only the first member's events would lose the rest silently."""
    first = gzip.compress(json.dumps({"batch": [purchase("member-1")]}).encode())
    second = gzip.compress(json.dumps({"batch": [purchase("member-2")]}).encode())
    headers = {**basic(SERVER_KEY), "Content-Encoding": "gzip"}
    response = target.post("/v1/batch", first + second, headers=headers)
    stored = [e["event"]["messageId"] for e in inbox(target.redis_url, target.prefix)]
    if response.status_code == 200:
        assert stored == ["member-1", "member-2"]
    else:  # two JSON documents one after the other are not one valid body either
        assert response.status_code == 400, response.text
        assert response.json()["code"] in ("invalid_encoding", "invalid_json")
        assert stored == []
    target.redis.delete(Keys(target.prefix).inbox)
    junk = target.post("/v1/batch", first + b"trailing junk", headers=headers)
    refused(junk, 400, "invalid_encoding")
    assert target.inbox_len() == 0


def test_unknown_or_missing_key_is_401(target: Target) -> None:
    body = refused(
        target.post("/v1/track", purchase("k1"), headers=basic("nope-not-a-key")),
        401,
        "unauthorized",
    )
    assert "unknown" in body["message"]
    body = refused(
        target.post("/v1/track", {**purchase("k2"), "writeKey": "nope-not-a-key"}),
        401,
        "unauthorized",
    )
    body = refused(target.post("/v1/track", purchase("k3")), 401, "unauthorized")
    assert "missing" in body["message"]
    refused(target.post("/beacon/v1/batch", {"batch": [purchase("k4")]}), 401, "unauthorized")
    assert target.inbox_len() == 0


def test_a_client_key_from_another_origin_is_403_without_cors_headers(target: Target) -> None:
    headers = {**basic(CLIENT_KEY), "Origin": OTHER_ORIGIN, "Content-Type": "text/plain"}
    response = target.post("/v1/t", purchase("o1"), headers=headers)
    refused(response, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert target.inbox_len() == 0


def test_a_server_key_with_an_origin_is_403(target: Target) -> None:
    for origin in (ORIGIN, OTHER_ORIGIN):
        headers = {**basic(SERVER_KEY), "Origin": origin}
        refused(
            target.post("/v1/track", purchase("o2"), headers=headers), 403, "origin_not_allowed"
        )
    assert target.inbox_len() == 0


# Backpressure.


def test_backlog_over_max_lag_is_429_until_drained(spawn: Any) -> None:
    """The collector's own writes take the inbox past CIO_COLLECT_MAX_LAG: 429 with
    Retry-After, nothing stored; once the relay (here: XTRIM) catches up, 200 again."""
    target = spawn(CIO_COLLECT_MAX_LAG="50")
    batch = {"batch": [purchase(f"fill-{i}") for i in range(60)]}
    assert target.post("/v1/batch", batch, headers=basic(SERVER_KEY)).status_code == 200
    assert target.inbox_len() == 60
    for n in range(3):
        response = target.post("/v1/track", purchase(f"late-{n}"), headers=basic(SERVER_KEY))
        refused(response, 429, "backlog")
        assert int(response.headers["Retry-After"]) > 0
    assert target.inbox_len() == 60
    target.redis.xtrim(Keys(target.prefix).inbox, maxlen=0)
    answers: list[int] = []

    def accepted() -> bool:
        response = target.post("/v1/track", purchase("after"), headers=basic(SERVER_KEY))
        answers.append(response.status_code)
        return response.status_code == 200

    wait_until(accepted, 15, "a 200 after the inbox drained")
    assert set(answers) <= {200, 429}
    stored = [e["event"]["messageId"] for e in inbox(target.redis_url, target.prefix)]
    assert stored == ["after"]


def test_an_inbox_already_over_max_lag_is_429_from_the_first_request(spawn: Any) -> None:
    """Other producers filled the inbox past CIO_COLLECT_MAX_LAG before this collector
    wrote anything: its first request is refused too."""
    target = spawn(CIO_COLLECT_MAX_LAG="50")
    for i in range(60):
        target.redis.xadd(Keys(target.prefix).inbox, {"event": json.dumps(purchase(f"other-{i}"))})
    response = target.post("/v1/track", purchase("first"), headers=basic(SERVER_KEY))
    refused(response, 429, "backlog")
    assert "Retry-After" in response.headers
    assert target.inbox_len() == 60


# Redis stopped.


class Sender(threading.Thread):
    """Posts single track calls with unique messageIds until halted; records every answer."""

    def __init__(self, url: str, tag: str, *, pause_s: float = 0.01, batch: int = 1) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.tag = tag
        self.pause_s = pause_s
        self.batch = batch
        self.halt = threading.Event()
        self.acknowledged: list[str] = []
        self.sent: list[str] = []
        self.statuses: list[int] = []
        self.bad: list[str] = []  # answers that are neither 200 nor a proper refusal
        self.retry_after: set[str] = set()
        self.errors = 0

    def run(self) -> None:
        session = requests.Session()
        n = 0
        while not self.halt.is_set():
            ids = [f"{self.tag}-{n}-{k}" for k in range(self.batch)]
            n += 1
            self.sent += ids
            if self.batch == 1:
                path, body = "/v1/track", purchase(ids[0], note=MARKER)
            else:
                path, body = "/v1/batch", {"batch": [purchase(i, note=MARKER) for i in ids]}
            try:
                response = session.post(
                    f"{self.url}{path}",
                    data=json.dumps(body),
                    headers=basic(SERVER_KEY),
                    timeout=15,
                )
            except requests.RequestException:
                self.errors += 1
                session = requests.Session()
                time.sleep(0.05)
                continue
            self.statuses.append(response.status_code)
            if response.status_code == 200:
                self.acknowledged += ids
            elif response.status_code == 503:
                self.retry_after.add(response.headers.get("Retry-After", ""))
                if response.json().get("code") != "unavailable":
                    self.bad.append(response.text)
            else:
                self.bad.append(f"{response.status_code} {response.text}")
            time.sleep(self.pause_s)


def test_redis_stopped_is_503_and_no_200_for_an_event_not_stored(
    spawn: Any, tmp_path: Path
) -> None:
    """Redis stops under a steady stream of calls: 503 + Retry-After (never a 200 for an
    event Redis does not hold); Redis back, 200 again from the same collector process."""
    own = OwnRedis(tmp_path)
    own.start()
    try:
        target = spawn(redis_url=own.url)
        sender = Sender(target.url, "outage")
        sender.start()
        wait_until(lambda: len(sender.acknowledged) >= 20, 20, "acknowledged calls before the stop")
        own.stop()
        wait_until(lambda: sender.statuses.count(503) >= 10, 30, "503s while Redis is down")
        health = requests.get(f"{target.url}/health", timeout=10)
        assert health.status_code == 503
        direct = target.post("/v1/track", purchase("while-down"), headers=basic(SERVER_KEY))
        refused(direct, 503, "unavailable")
        assert int(direct.headers["Retry-After"]) > 0
        mark = len(sender.acknowledged)
        own.start()
        wait_until(lambda: len(sender.acknowledged) >= mark + 20, 30, "200s after Redis is back")
        sender.halt.set()
        sender.join(20)
        assert target.collector.proc is not None and target.collector.proc.poll() is None
        assert target.collector.starts == 1
        assert sender.bad == []
        assert sender.retry_after and all(int(v) > 0 for v in sender.retry_after)
        stored = {e["event"]["messageId"] for e in inbox(own.url, target.prefix)}
        assert set(sender.acknowledged) <= stored
        assert "while-down" not in stored
        assert MARKER not in target.collector.output()
    finally:
        own.stop()


def test_redis_refusing_writes_is_503_and_nothing_of_the_batch_is_stored(
    spawn: Any, tmp_path: Path
) -> None:
    """Redis at its maxmemory (noeviction) refuses the writes: 503 + Retry-After and no
    event of the batch stored; memory freed, 200 again."""
    own = OwnRedis(tmp_path)
    own.start()
    try:
        target = spawn(redis_url=own.url)
        client = redis.Redis.from_url(own.url)
        client.config_set("maxmemory", 1)
        batch = {"batch": [purchase(f"oom-{i}") for i in range(3)]}
        response = target.post("/v1/batch", batch, headers=basic(SERVER_KEY))
        body = refused(response, 503, "unavailable")
        assert "Redis refused the write" in body["message"]
        assert int(response.headers["Retry-After"]) > 0
        assert target.inbox_len() == 0
        client.config_set("maxmemory", 0)
        assert target.post("/v1/batch", batch, headers=basic(SERVER_KEY)).status_code == 200
        assert target.inbox_len() == 3
    finally:
        own.stop()


# SIGKILL under load, then delivery.


def test_sigkill_under_load_loses_no_acknowledged_event(
    spawn: Any, relay_env: dict[str, str], emulator_client: EmulatorClient, tmp_path: Path
) -> None:
    """Four senders post continuously; the whole collector process group is SIGKILLed
    mid-flow and restarted on its port at once. Every call that got a 200 is in the inbox,
    and the relay then delivers each exactly once."""
    target = spawn(
        redis_url=relay_env["CIO_REDIS_URL"], prefix=relay_env["CIO_REDIS_PREFIX"], workers=2
    )
    senders = [
        Sender(target.url, f"kill{n}", pause_s=0.005, batch=1 if n % 2 == 0 else 4)
        for n in range(4)
    ]
    for sender in senders:
        sender.start()
    try:
        acked = lambda: sum(len(s.acknowledged) for s in senders)  # noqa: E731
        wait_until(lambda: acked() >= 150, 30, "acknowledged calls before the kill")
        target.collector.kill()
        before = acked()
        target.collector.start(timeout_s=30)
        restarted = target.collector.output()
        assert "address already in use" not in restarted.lower()
        wait_until(lambda: acked() >= before + 100, 30, "acknowledged calls after the restart")
    finally:
        for sender in senders:
            sender.halt.set()
        for sender in senders:
            sender.join(20)
    acknowledged = {i for s in senders for i in s.acknowledged}
    sent = {i for s in senders for i in s.sent}
    assert all(not s.bad for s in senders), [s.bad[:3] for s in senders]
    assert sum(s.errors for s in senders) > 0, "the kill interrupted no request"
    stored_ids = [e["event"]["messageId"] for e in inbox(target.redis_url, target.prefix)]
    missing = acknowledged - set(stored_ids)
    assert not missing, f"{len(missing)} acknowledged calls are not in the inbox"
    assert set(stored_ids) <= sent

    relay = Relay(relay_env, tmp_path).start(concurrency=2)
    try:
        expected = {event_ulid(f"msg:{i}") for i in acknowledged}

        def delivered() -> bool:
            seen = {e["id"] for e in emulator_client.events()}
            return expected <= seen and inbox_empty(relay)

        wait_until(delivered, 90, "every acknowledged call delivered")
    finally:
        relay.stop()
    ids = [e["id"] for e in emulator_client.events()]
    print(
        f"sigkill: {len(sent)} sent, {len(acknowledged)} acknowledged, {len(stored_ids)} stored,"
        f" {len(ids)} delivered, {sum(s.errors for s in senders)} requests unanswered"
    )
    assert len(ids) == len(set(ids)), "an event was stored twice by the emulator"
    assert set(ids) <= {event_ulid(f"msg:{i}") for i in sent}
    assert set(ids) == {event_ulid(f"msg:{i}") for i in set(stored_ids)}


# Graceful shutdown.


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_requests_in_flight_then_exits_0(spawn: Any, workers: int) -> None:
    """Slow senders are mid-body when SIGTERM arrives, others keep posting: the slow ones
    still get their 200 and are stored, then the process exits 0 and frees its port."""
    target = spawn(workers=workers)
    sender = Sender(target.url, "term", pause_s=0.0)
    sender.start()
    slow = []
    for n in range(6):
        body = json.dumps(purchase(f"slow-{n}")).encode()
        request = RawRequest(
            target.collector.port,
            "/v1/track",
            {
                **basic(SERVER_KEY),
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
            },
        )
        request.send(body[:20])
        slow.append((request, body))
    wait_until(lambda: len(sender.acknowledged) >= 20, 20, "calls acknowledged before SIGTERM")
    assert target.collector.proc is not None
    target.collector.proc.send_signal(15)
    time.sleep(1.0)
    for request, body in slow:
        assert request.send(body[20:])
    answers = [request.response() for request, _ in slow]
    code = target.collector.proc.wait(40)
    sender.halt.set()
    sender.join(20)
    assert [a[0] for a in answers] == [200] * len(slow), answers
    assert all(json.loads(a[2]) == {"success": True} for a in answers)
    assert code == 0, target.collector.output()
    wait_until(lambda: not target.collector.live_pids(), 10, "every collector process gone")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", target.collector.port))
        s.listen()
    stored = {e["event"]["messageId"] for e in inbox(target.redis_url, target.prefix)}
    assert {f"slow-{n}" for n in range(len(slow))} <= stored
    assert set(sender.acknowledged) <= stored
    assert sender.bad == []


# Logs.


@pytest.mark.parametrize("workers", [1, 2])
def test_no_event_content_or_server_key_in_the_logs(spawn: Any, workers: int) -> None:
    """Refused requests carrying a distinctive value: every server process logs the
    refusal in the configured format (CIO_LOG_FORMAT=json), never the value, nor the
    server source's key."""
    target = spawn(workers=workers)
    headers = basic(SERVER_KEY)
    marked = purchase("logged", properties={"note": MARKER})
    target.post("/v1/track", b'{"note": "' + MARKER.encode() + b'", ', headers=headers)
    target.post("/v1/batch", {"batch": [marked, {"type": "nope", "note": MARKER}]}, headers=headers)
    target.post("/v1/track", purchase("huge", properties={"note": MARKER * 3000}), headers=headers)
    target.post("/v1/track", {"event": MARKER, "type": "track"}, headers=headers)
    target.post("/v1/track", marked, headers=basic(MARKER))
    target.post("/v1/track", marked, headers={**headers, "Origin": OTHER_ORIGIN})
    target.post(
        "/v1/track",
        gzip.compress(json.dumps(marked).encode())[:40],
        headers={**headers, "Content-Encoding": "gzip"},
    )
    target.collector.stop()  # its exit code is the shutdown test's business
    logs = target.collector.output()
    assert logs.count("collect_refused") >= 7, logs
    for line in logs.splitlines():
        if "collect_refused" in line:
            assert json.loads(line)["event"] == "collect_refused", f"not JSON: {line}"
    assert MARKER not in logs
    assert SERVER_KEY not in logs
    assert target.inbox_len() == 0


def _zeros_gzip(size: int, *, trailer: bool = True) -> bytes:
    """``size`` zero bytes as gzip (about a thousandth of the size), built from one
    compressed 4 MiB segment repeated: a full flush makes every segment the same bytes.
    Without ``trailer`` the stream stops before its CRC, as a bomb cut off at the
    request limit is never read that far."""
    segment = 4 * MiB
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    part = packer.compress(bytes(segment)) + packer.flush(zlib.Z_FULL_FLUSH)
    count = size // segment
    head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    if not trailer:
        return head + part * count
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(bytes(segment), crc)
    tail = packer.flush() + struct.pack("<II", crc, (count * segment) & 0xFFFFFFFF)
    return head + part * count + tail


def _peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")
