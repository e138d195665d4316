"""Flower shows the relay's work, not its ticks: watched through Flower's own API, an
idle minute adds a few task rows, and the drains that delivered 200 events say so."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.conftest import ROOT, Relay, free_port, inbox_empty, wait_until
from tests.integration.test_faults import delivered_ids, purchases
from worker.emulator import EmulatorClient
from worker.producer import enqueue_many
from worker.sizing import default_concurrency

pytestmark = pytest.mark.integration

IDLE_S = 60
MOST_ROWS_PER_IDLE_MINUTE = 12  # the bound for the whole relay
AUTH = ("ops", "flower-idle-pw-5c1d")


class Flower:
    """``cio-relay flower`` as make run starts it, read through its HTTP API."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.port = free_port()
        self._log = open(logdir / "flower.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker.cli.main", "flower"],
            env={
                **env,
                "CIO_FLOWER_PORT": str(self.port),
                "CIO_FLOWER_USER": AUTH[0],
                "CIO_FLOWER_PASSWORD": AUTH[1],
            },
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def tasks(self) -> dict[str, dict[str, Any]]:
        reply = requests.get(f"{self.base}/api/tasks", auth=AUTH, timeout=15)
        reply.raise_for_status()
        return dict(reply.json())

    def workers(self) -> dict[str, Any]:
        try:
            reply = requests.get(f"{self.base}/api/workers?refresh=1", auth=AUTH, timeout=15)
        except requests.ConnectionError:
            return {}
        return dict(reply.json()) if reply.status_code == 200 else {}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._log.close()


@pytest.fixture
def default_relay(relay_env: dict[str, str], tmp_path: Path) -> Iterator[Relay]:
    """A relay with make run's timing (1 s ticks, 5 s budget, default listen) and its
    default number of worker processes."""
    env = {**relay_env, "CIO_TICK_S": "1", "CIO_DRAIN_BUDGET_S": "5"}
    relay = Relay(env, tmp_path).start(concurrency=default_concurrency())
    yield relay
    relay.stop()


def result_of(row: dict[str, Any]) -> dict[str, Any]:
    """A drain's result as Flower shows it (the repr of the returned dict)."""
    text = row.get("result")
    return ast.literal_eval(text) if text else {}


def test_idle_minute_adds_few_rows_and_busy_drains_carry_the_200_delivered(
    default_relay: Relay, emulator_client: EmulatorClient
) -> None:
    relay = default_relay
    flower = Flower(relay.env, relay.logdir)
    try:
        wait_until(lambda: any(relay.prefix in w for w in flower.workers()), 90, "the worker")
        wait_until(lambda: flower.tasks() != {}, 30, "the first drain in Flower")
        before = set(flower.tasks())
        time.sleep(IDLE_S)
        tasks = flower.tasks()
        idle_rows = {uuid: row for uuid, row in tasks.items() if uuid not in before}
        states = sorted(f"{r['state']} {r.get('result')}" for r in idle_rows.values())
        print(f"idle {IDLE_S} s: {len(idle_rows)} new Flower rows: {states}")
        assert len(idle_rows) <= MOST_ROWS_PER_IDLE_MINUTE, idle_rows
        for row in idle_rows.values():  # every finished one is plainly idle
            assert row["state"] != "SUCCESS" or result_of(row) == {"idle": True}, row
        assert emulator_client.requests() == []

        # Rows already finished; the drain listening now may be the one that does the work.
        mark = {uuid for uuid, row in tasks.items() if row["state"] in ("SUCCESS", "FAILURE")}
        enqueue_many(relay.redis, purchases(200, "idle-then-busy"), prefix=relay.prefix)
        wait_until(lambda: len(delivered_ids(emulator_client)) >= 200, 60, "200 delivered")
        wait_until(lambda: inbox_empty(relay), 30, "the inbox settled")

        def delivered_in_flower() -> int:
            rows = [row for uuid, row in flower.tasks().items() if uuid not in mark]
            return sum(int(result_of(r).get("delivered", 0)) for r in rows)

        # The drains that did the work end within a budget of their first read.
        wait_until(lambda: delivered_in_flower() >= 200, 60, "the busy drains' results")
        busy = [r for u, r in flower.tasks().items() if u not in mark]
        print(f"after 200 events: {[(r['state'], r.get('result')) for r in busy]}")
        assert delivered_in_flower() == 200
        assert len(delivered_ids(emulator_client)) == 200
    finally:
        flower.stop()
    worker_log = (relay.logdir / "worker0.log").read_text(errors="replace")
    assert "Task relay.drain[" not in worker_log  # no received/succeeded line per drain
    drain_lines = [line for line in worker_log.splitlines() if '"event": "drain"' in line]
    assert drain_lines and all('"delivered"' in line for line in drain_lines)
