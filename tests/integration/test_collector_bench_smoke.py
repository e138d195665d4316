"""A short run of the collector benchmark: it completes and its JSON report has every
figure, and every 200 it counted is in Redis.

Timings are not asserted (they belong to ``make bench-collector``); counts are, since
they come from the load tools' answers and from Redis' own count of stream entries.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

WRK_FIGURES = ("requests_per_s", "events_per_s", "p50_ms", "p99_ms", "collector_cpu_us_per_event")
OPEN_LOOP_FIGURES = ("p50_ms", "p95_ms", "p99_ms", "service_p99_ms", "achieved_rate")
CPU_FIGURES = ("machine_busy_cores", "collector_cores", "other_cores", "load_average_1m")


def _acknowledged_are_stored(figures: dict) -> None:
    assert figures["status_200"] > 0
    # Every 200 is in Redis; more may be (requests cut off when the tool stopped).
    assert figures["stored_events"] >= figures["events_acknowledged"]
    for name in CPU_FIGURES:
        assert name in figures["cpu"], name


@pytest.mark.skipif(not (shutil.which("wrk") and shutil.which("hey")), reason="wrk/hey missing")
def test_collector_bench_smoke_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.collector",
            "--workers",
            "1",
            "--repeat",
            "1",
            "--duration",
            "1",
            "--warmup",
            "1",
            "--connections",
            "8",
            "--batch-size",
            "10",
            "--rate",
            "100",
            "--latency-duration",
            "2",
            "--soak-duration",
            "3",
            "--soak-rate",
            "100",
            "--soak-workers",
            "1",
            "--e2e-rate",
            "100",
            "--e2e-duration",
            "2",
            "--e2e-workers",
            "1",
            "--relay-workers",
            "2",
            "--out",
            str(out),
            "--name",
            "smoke",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "single req/s" in proc.stdout
    report = json.loads((out / "smoke.json").read_text())

    (run,) = report["runs"]
    assert (run["server"], run["workers"]) == ("uvicorn", 1)
    for kind in ("single", "batch"):
        for name in WRK_FIGURES:
            assert name in run[kind], (kind, name)
        assert run[kind]["non_2xx"] == 0
        _acknowledged_are_stored(run[kind])
    assert run["batch"]["events_acknowledged"] == run["batch"]["status_200"] * 10

    open_loop = run["latency"]["open_loop"]
    for name in OPEN_LOOP_FIGURES:
        assert name in open_loop, name
    # The open loop sends exactly rate x duration requests, all answered 200 and stored.
    assert open_loop["requests"] == open_loop["status_200"] == 200
    assert open_loop["stored_events"] == 200
    assert open_loop["p50_ms"] <= open_loop["p95_ms"] <= open_loop["p99_ms"]
    hey = run["latency"]["hey"]
    assert hey["other_status"] == 0
    _acknowledged_are_stored(hey)

    (row,) = report["summary"]
    for name in ("single_requests_per_s", "batch_events_per_s", "latency_p99_ms", "hey_p99_ms"):
        assert row[name] > 0, name

    soak = report["soak"]
    assert soak["stored_events"] == soak["status_200"] == 300
    assert soak["rss"]["processes"] and soak["rss"]["rss_end_mb_max"] > 0
    assert "growth_pct_max" in soak["rss"]

    e2e = report["e2e"]
    # Every event sent over HTTP reached the emulator through the relay.
    assert e2e["http"]["status_200"] == e2e["http"]["requests"] == 200
    assert e2e["accepted"] + e2e["dead_lettered"] == e2e["events"] == 200
    assert e2e["events_per_s"] > 0
    assert 0 < e2e["events_timed"] <= e2e["events"]
    assert e2e["p50_ms"] <= e2e["p99_ms"]
