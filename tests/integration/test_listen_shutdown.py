"""A warm shutdown ends a drain that is listening on an idle inbox, instead of waiting it out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Relay, sigterm_and_wait, wait_until
from worker import live
from worker.keys import Keys

pytestmark = pytest.mark.integration


def test_sigterm_ends_a_ten_minute_listen_and_the_worker_exits_cleanly(
    relay_env: dict[str, str], tmp_path: Path
) -> None:
    """With drains listening up to 600 s, SIGTERM still stops the worker: the listening
    drain sees the shutdown at its next read, returns idle, and the worker exits 0."""
    env = {**relay_env, "CIO_IDLE_LISTEN_S": "600"}
    relay = Relay(env, tmp_path).start(concurrency=2)
    keys = Keys(relay.prefix)
    try:
        wait_until(lambda: "ready." in relay.logs(), 60, "the worker")
        wait_until(lambda: relay.redis.zcard(live.live_key(keys)) > 0, 30, "a drain listening")
        try:
            code = sigterm_and_wait(relay.procs[0], timeout_s=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the worker waited out its listening drain")
        assert code == 0
        assert "Hard time limit" not in relay.logs()
    finally:
        relay.stop()
