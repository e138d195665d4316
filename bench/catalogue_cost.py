"""What keeping the event catalogue costs the drain per event: the Python that collects a
batch's names, and (an upper bound) the EVAL sent in a MULTI of its own, against a Redis
of our own. Run: ``python -m bench.catalogue_cost``."""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
import timeit
from pathlib import Path

import redis

from bench.procs import free_port, wait_for
from worker import catalogue
from worker.keys import Keys
from worker.redisconn import local_server_argv

BATCH = 500
ROUNDS = 300
# Roughly the bench's default mix: mostly page views, a few track names, identifies unnamed.
NAMES = ["Page viewed"] * 55 + [f"Product {i}" for i in range(20)] + ["Added to cart"] * 13
NAMES += [None] * 12  # type: ignore[list-item]


def main() -> None:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        argv = local_server_argv(binary, port, Path(data))
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            wait_for(lambda: _up(client), 10, "redis-server")
            measure(client)
        finally:
            proc.terminate()
            proc.wait(10)


def _up(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def measure(client: redis.Redis) -> None:
    keys = Keys("bench")
    rng = random.Random(7)
    batch = [(rng.choice(NAMES), rng.choice(("client", "server"))) for _ in range(BATCH)]

    def python_only() -> None:
        seen = []
        for pair in batch:
            seen.append(pair)
        catalogue.batch_rows(seen)

    def with_round_trip() -> None:
        seen = []
        for pair in batch:
            seen.append(pair)
        pipe = client.pipeline(transaction=True)
        catalogue.note(pipe, keys, seen, time.time())
        pipe.execute()

    python_s = timeit.timeit(python_only, number=ROUNDS) / ROUNDS
    total_s = timeit.timeit(with_round_trip, number=ROUNDS) / ROUNDS
    print(f"batch of {BATCH}, {len(catalogue.batch_rows(batch))} distinct names")
    print(f"python per event:                      {python_s / BATCH * 1e6:.2f} us")
    print(
        f"python + EVAL in its own MULTI, per event: {total_s / BATCH * 1e6:.2f} us (upper bound)"
    )


if __name__ == "__main__":
    main()
