"""``python -m bench.collector``: the collector benchmark on this machine.

Starts its own redis-server (``config/redis.conf``: AOF, fsync every second) and the
collector as real processes; load from wrk and hey (Debian) and an open-loop generator
in this process. Prints a table and writes every figure as JSON under ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.collector.run import SCENARIOS, CollectorBench, Options
from bench.collector.servers import SERVERS
from bench.procs import run_and_report
from worker.sizing import default_concurrency


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m bench.collector", description=__doc__)
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)} (default all)",
    )
    p.add_argument(
        "--servers", default="uvicorn", help=f"comma-separated, from {', '.join(SERVERS)}"
    )
    p.add_argument(
        "--workers", default="2", help="collector processes to try, comma-separated (e.g. 1,2,3)"
    )
    p.add_argument("--repeat", type=int, default=2, help="runs of each server and worker count")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of each wrk run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk before each run")
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    p.add_argument("--batch-size", type=int, default=100, help="events per /v1/batch request")
    p.add_argument("--rate", type=float, default=2000.0, help="requests/s offered for latency")
    p.add_argument("--latency-duration", type=float, default=20.0, help="seconds at --rate")
    p.add_argument(
        "--hey",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure latency with hey -q (closed loop per worker)",
    )
    p.add_argument("--soak-duration", type=float, default=600.0, help="seconds of the soak")
    p.add_argument("--soak-rate", type=float, default=2000.0, help="requests/s in the soak")
    p.add_argument("--soak-workers", type=int, default=2, help="collector processes, soak")
    p.add_argument("--e2e-rate", type=float, default=2000.0, help="events/s offered end to end")
    p.add_argument("--e2e-batch", type=int, default=1, help="events per request end to end")
    p.add_argument("--e2e-duration", type=float, default=30.0, help="seconds end to end")
    p.add_argument("--e2e-workers", type=int, default=2, help="collector processes, end to end")
    p.add_argument(
        "--relay-workers",
        type=int,
        default=default_concurrency(),
        help="Celery worker processes end to end (default as make run)",
    )
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="where JSON goes")
    p.add_argument("--name", default="", help="JSON file name (default collector-<time>)")
    p.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    a = p.parse_args(argv)
    scenarios = tuple(s.strip() for s in a.scenarios.split(",") if s.strip())
    servers = tuple(s.strip() for s in a.servers.split(",") if s.strip())
    if bad := [s for s in scenarios if s not in SCENARIOS]:
        p.error(f"unknown scenario {bad[0]!r}")
    if bad := [s for s in servers if s not in SERVERS]:
        p.error(f"unknown server {bad[0]!r}")
    return Options(
        servers=servers,
        workers=_ints(a.workers),
        repeat=a.repeat,
        scenarios=scenarios,
        duration=a.duration,
        warmup=a.warmup,
        connections=a.connections,
        wrk_threads=a.wrk_threads,
        batch_size=a.batch_size,
        rate=a.rate,
        latency_duration=a.latency_duration,
        hey=a.hey,
        soak_duration=a.soak_duration,
        soak_rate=a.soak_rate,
        soak_workers=a.soak_workers,
        e2e_rate=a.e2e_rate,
        e2e_batch=a.e2e_batch,
        e2e_duration=a.e2e_duration,
        e2e_workers=a.e2e_workers,
        relay_workers=a.relay_workers,
        out=a.out,
        name=a.name,
        keep_logs=a.keep_logs,
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(report: dict[str, Any]) -> str:
    """One line per server and worker count (medians of the runs), then soak and e2e."""
    cols = (
        ("single req/s", "single_requests_per_s"),
        ("batch events/s", "batch_events_per_s"),
        ("p50 ms", "latency_p50_ms"),
        ("p99 ms", "latency_p99_ms"),
        ("hey p99 ms", "hey_p99_ms"),
        ("other cores", "other_cores_single"),
    )
    lines = []
    if report.get("summary"):
        lines.append("server      procs runs" + "".join(name.rjust(16) for name, _ in cols))
        for row in report["summary"]:
            lines.append(
                f"{row['server']:<12}{row['workers']:>5}{row['runs']:>5}"
                + "".join(_fmt(row.get(key)).rjust(16) for _, key in cols)
            )
        lines.append(f"(medians; latency at {report['options']['rate']:g} requests/s offered)")
    soak = report.get("soak")
    if soak:
        rss = soak["rss"]
        lines.append(
            f"soak {soak['duration_s']:g} s at {soak['offered_rate']:g}/s: RSS per process "
            f"{_fmt(rss['rss_end_mb_max'])} MB at the end, growth from {rss['from_s']:g} s "
            f"{_fmt(rss['growth_pct_max'])}%, p99 {_fmt(soak['p99_ms'])} ms, "
            f"stored-acknowledged {soak['stored_minus_acknowledged']}"
        )
    e2e = report.get("e2e")
    if e2e:
        lines.append(
            f"end to end at {e2e['offered_events_per_s']:g} events/s offered: "
            f"{_fmt(e2e['events_per_s'])} events/s accepted by the emulator, "
            f"p50 {_fmt(e2e['p50_ms'])} ms, p99 {_fmt(e2e['p99_ms'])} ms, "
            f"{e2e['accepted']:,}/{e2e['events']:,} events, "
            f"machine busy {e2e['machine_busy_cores']} cores"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    return run_and_report(
        lambda logdir, say: CollectorBench(opts, logdir, say).run(),
        table,
        out=opts.out,
        name=opts.name,
        name_prefix="collector",
        log_prefix="cio-collector-bench-",
        keep_logs=opts.keep_logs,
    )


if __name__ == "__main__":
    raise SystemExit(main())
