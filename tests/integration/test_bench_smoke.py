"""A short run of the benchmark: it completes and its JSON report has every figure.

Timings are not asserted (they belong to ``make bench``); counts are, since they come
from the emulator's records and must match what was enqueued.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RELAY_FIELDS = (
    "events_per_s",
    "requests",
    "status_429",
    "events_per_request",
    "peak_rss_mb_max",
    "cpu_s_per_1000_events",
    "processes",
)


def test_bench_smoke_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--events",
            "300",
            "--workers",
            "2",
            "--offered-rate",
            "100",
            "--duration",
            "2",
            "--baseline-events",
            "20",
            "--out",
            str(out),
            "--name",
            "smoke",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "events/s end to end" in proc.stdout
    report = json.loads((out / "smoke.json").read_text())

    burst = report["relay"]["throughput"]
    steady = report["relay"]["latency"]
    baseline = report["baseline"]
    for figures in (burst, steady, baseline):
        for name in RELAY_FIELDS:
            assert name in figures, name
        assert figures["status_429"] == 0
        assert figures["events_per_s"] > 0
        assert all(p["peak_rss_mb"] > 0 for p in figures["processes"])
    # Every enqueued event was accepted, as the emulator's own records count them.
    assert burst["accepted"] == burst["events"] == 300
    assert steady["accepted"] == steady["events"] == 200
    assert baseline["accepted"] == baseline["events"] == 20
    # The baseline sends one event per request; the relay batches.
    assert baseline["requests"] >= 20
    assert burst["requests"] < burst["events"]
    # Latency is measured for the events the emulator stored (identifies are not events).
    assert 0 < steady["events_timed"] <= steady["events"]
    assert steady["p50_ms"] <= steady["p95_ms"] <= steady["p99_ms"]
    # Worker processes include the prefork children.
    assert any(p["role"] == "worker-child" for p in burst["processes"])
    assert report["speedup_vs_baseline"] > 0
