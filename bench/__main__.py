"""``python -m bench``: the throughput benchmark on this machine (``make bench``).

Starts its own redis-server, the emulator (100 requests/s, 50 ms added latency, lean
mode) and Celery worker processes; prints a table and writes the full figures as JSON
under ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.events import Mix
from bench.procs import run_and_report
from bench.run import Bench, Options
from worker.sizing import default_concurrency

SCENARIOS = ("throughput", "latency")


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    workers = default_concurrency()
    p.add_argument("--events", type=int, default=100_000, help="events in the throughput burst")
    p.add_argument(
        "--workers",
        "--concurrency",
        dest="workers",
        type=int,
        default=workers,
        help="Celery worker processes (prefork concurrency), relay and baseline; default as "
        f"make run: three per core ({workers})",
    )
    p.add_argument(
        "--offered-rate", type=float, default=1000.0, help="events/s offered in the latency run"
    )
    p.add_argument("--duration", type=float, default=30.0, help="seconds of the latency run")
    p.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--baseline-events", type=int, default=1000, help="events for the baseline")
    p.add_argument(
        "--baseline-concurrency", type=int, help="baseline worker processes (default --workers)"
    )
    p.add_argument("--max-rps", type=int, default=100, help="CIO_MAX_RPS for the relay")
    p.add_argument("--emulator-rps", type=float, default=100.0, help="emulator's rate limit")
    p.add_argument("--latency-ms", type=float, default=50.0, help="emulator's added latency")
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated: throughput, latency (default both)",
    )
    p.add_argument(
        "--backlog",
        default="",
        help="comma-separated inbox backlogs to compare, e.g. 10000,1000000 (default none)",
    )
    p.add_argument(
        "--backlog-window", type=float, default=20.0, help="seconds measured per backlog"
    )
    p.add_argument(
        "--soak",
        action="store_true",
        help="the 10-minute soak: offer 2,000 events/s for 600 s (latency run only)",
    )
    p.add_argument(
        "--relay-env",
        action="append",
        default=[],
        metavar="CIO_NAME=VALUE",
        help="extra relay setting (repeatable), e.g. CIO_BATCH_SIZE=1000",
    )
    p.add_argument(
        "--mix",
        default="page=55,track=33,identify=12",
        help="share of each kind of event: page, track, identify, anonymous (a page view by "
        "a visitor never identified, sent alone to /api/v1/events)",
    )
    p.add_argument(
        "--shapes",
        default="customerlabs,segment",
        help="input shapes, taking turns event by event: customerlabs, segment",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, default=900.0, help="give up on a phase after this")
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="where JSON goes")
    p.add_argument("--name", default="", help="file name of the JSON (default: a timestamp)")
    p.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    a = p.parse_args(argv)
    try:
        mix = Mix.parse(a.mix, a.shapes)
    except ValueError as exc:
        p.error(str(exc))
    opts = Options(
        events=a.events,
        workers=a.workers,
        offered_rate=a.offered_rate,
        duration=a.duration,
        baseline=a.baseline,
        baseline_events=a.baseline_events,
        baseline_concurrency=a.baseline_concurrency,
        max_rps=a.max_rps,
        emulator_rps=a.emulator_rps,
        latency_ms=a.latency_ms,
        backlog=[int(x) for x in a.backlog.split(",") if x.strip()],
        backlog_window=a.backlog_window,
        scenarios=tuple(s.strip() for s in a.scenarios.split(",") if s.strip()),
        relay_env=dict(kv.split("=", 1) for kv in a.relay_env),
        out=a.out,
        keep_logs=a.keep_logs,
        seed=a.seed,
        mix=mix,
        timeout=a.timeout,
        name=a.name,
    )
    if a.soak:
        opts.offered_rate, opts.duration, opts.scenarios = 2000.0, 600.0, ("latency",)
    return opts


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


ROWS = (
    ("events/s end to end", "events_per_s"),
    ("events/s, first N of a backlog", "first_n_events_per_s"),
    ("events", "events"),
    ("accepted by emulator", "accepted"),
    ("dead-lettered", "dead_lettered"),
    ("requests sent", "requests"),
    ("429s received", "status_429"),
    ("other error answers", "other_errors"),
    ("events per request", "events_per_request"),
    ("peak requests in any 1 s", "peak_requests_per_s"),
    ("latency p50 ms", "p50_ms"),
    ("latency p95 ms", "p95_ms"),
    ("latency p99 ms", "p99_ms"),
    ("peak RSS per worker process MB", "peak_rss_mb_max"),
    ("RSS growth % (max per process)", "rss_growth_pct_max"),
    ("CPU s per 1,000 events", "cpu_s_per_1000_events"),
)


def table(report: dict[str, Any]) -> str:
    columns: list[tuple[str, dict[str, Any]]] = []
    relay = report.get("relay", {})
    if "throughput" in relay:
        columns.append(("relay burst", relay["throughput"]))
    if "latency" in relay:
        lat = relay["latency"]
        columns.append((f"relay @{lat['offered_rate']:g}/s", lat))
    for b in report.get("backlog", []):
        columns.append((f"backlog {b['backlog']:,}", b))
    if "baseline" in report:
        columns.append(("baseline burst", report["baseline"]))
    for _, col in columns:
        burst = col.get("latency_from_first_enqueue")
        if burst:
            col.setdefault("p50_ms", burst["p50_ms"])
            col.setdefault("p95_ms", burst["p95_ms"])
            col.setdefault("p99_ms", burst["p99_ms"])
    width = max(len(r[0]) for r in ROWS) + 2
    colw = max(16, *(len(name) + 2 for name, _ in columns))
    lines = ["".ljust(width) + "".join(name.rjust(colw) for name, _ in columns)]
    for label, key in ROWS:
        if not any(key in col for _, col in columns):
            continue
        lines.append(label.ljust(width) + "".join(_fmt(c.get(key)).rjust(colw) for _, c in columns))
    if "speedup_vs_baseline" in report:
        lines.append(f"relay / baseline events/s: {report['speedup_vs_baseline']}x")
    if "backlog_rate_ratio" in report:
        lines.append(
            f"slowest / fastest backlog rate: {report['backlog_rate_ratio']} over the window, "
            f"{report.get('backlog_first_n_rate_ratio')} over the first N events"
        )
    lines.append("(burst latencies are measured from the first enqueue of the burst)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_and_report(
        lambda logdir, say: Bench(opts, logdir, say).run(),
        table,
        out=opts.out,
        name=opts.name,
        name_prefix="run",
        log_prefix="cio-bench-",
        keep_logs=opts.keep_logs,
    )


if __name__ == "__main__":
    raise SystemExit(main())
