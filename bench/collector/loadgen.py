"""An open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, whatever
the answers take, and each latency counts from the time its request was due.

A closed-loop tool (``hey -q``) waits for an answer before sending the next request, so
a slow answer delays the requests behind it and their wait is never measured (the
"coordinated omission" of a closed loop). Here the schedule is fixed in advance: a
request that could not leave on time because every connection was busy still has its
latency measured from when it was due.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import uvloop

LATE_S = 0.005  # a request sent this long after it was due counts as late


@dataclass
class Outcome:
    """What happened to every request: when it was due (epoch s), sent, answered; status
    (-1 when the connection failed or timed out)."""

    due: list[float]
    sent: list[float]
    answered: list[float]
    status: list[int]
    wall_s: float
    pool_waits: int = 0

    def service_s(self) -> list[float]:
        """Sent -> answered, for the 200s: the server's part alone, without any wait for
        a free connection or a late start of the generator itself."""
        return [
            a - s
            for s, a, st in zip(self.sent, self.answered, self.status, strict=True)
            if st == 200
        ]

    def latencies_s(self, ok_only: bool = True) -> list[float]:
        return [
            a - d
            for d, a, s in zip(self.due, self.answered, self.status, strict=True)
            if not ok_only or s == 200
        ]

    def late(self) -> int:
        return sum(1 for d, s in zip(self.due, self.sent, strict=True) if s - d > LATE_S)


def http_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 POST."""
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _open_loop(
    host: str,
    port: int,
    request_for: Callable[[int], bytes],
    count: int,
    rate: float,
    connections: int,
    timeout_s: float,
) -> Outcome:
    loop = asyncio.get_running_loop()
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    due = [0.0] * count
    sent = [0.0] * count
    answered = [0.0] * count
    status = [0] * count
    # uvloop's loop.time() counts whole milliseconds: every time here is time.time().
    clock = time.time
    start = clock() + 0.05

    async def one(i: int, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        sent[i] = clock()
        try:
            status[i] = await asyncio.wait_for(_exchange(*conn, request_for(i)), timeout_s)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            status[i] = -1
            conn[1].close()
            with contextlib.suppress(OSError):
                conn = await asyncio.open_connection(host, port)
        answered[i] = clock()
        pool.put_nowait(conn)

    # Only the requests in flight are referenced: a list of every task ever made would
    # make each garbage collection slower as the run goes on.
    in_flight: set[asyncio.Task[None]] = set()
    pool_waits = 0
    for i in range(count):
        at = due[i] = start + i / rate
        delay = at - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        if pool.empty():
            pool_waits += 1  # every connection busy: the server is behind
        task = loop.create_task(one(i, await pool.get()))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    while in_flight:
        await asyncio.gather(*list(in_flight))
    wall = clock() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    return Outcome(due, sent, answered, status, wall, pool_waits)


def open_loop(
    host: str,
    port: int,
    request_for: Callable[[int], bytes],
    count: int,
    rate: float,
    connections: int = 100,
    timeout_s: float = 10.0,
) -> Outcome:
    """Send ``count`` requests at ``rate`` per second over a pool of keep-alive connections
    (``request_for(i)`` gives request i's bytes); returns every request's times."""
    # No garbage collection pauses while the schedule runs (they would make requests
    # late through no fault of the server); the run's objects are freed afterwards.
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(
                _open_loop(host, port, request_for, count, rate, connections, timeout_s)
            )
    finally:
        gc.enable()
