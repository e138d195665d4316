"""The collector benchmark's measurements, each against a freshly started collector.

Requests/s and events/s come from the load generator's own count of 200 answers; the
inbox's ``entries-added`` (XINFO STREAM, which trimming does not lower) is read before
and after, so every 200 can be checked against what Redis stored. CPU and RSS come from
/proc; the machine's other load (other people's processes) is reported per measurement.
"""

from __future__ import annotations

import base64
import os
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from bench.collector import tools
from bench.collector.loadgen import Outcome, http_request, open_loop
from bench.collector.servers import WRITE_KEY, Collector
from bench.events import Mix, generate
from bench.procs import ROOT, Procs, ProcWatcher, cpu_seconds, system_cpu
from bench.run import (
    Bench,
    latencies,
    latency_figures,
    machine,
    percentile,
    proc_figures,
    request_figures,
)
from bench.run import Options as RelayOptions
from worker.keys import Keys
from worker.sizing import default_concurrency

AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
PREFIX = "cbench"
SCENARIOS = ("single", "batch", "latency", "soak", "e2e")


@dataclass
class Options:
    servers: tuple[str, ...] = ("uvicorn",)
    workers: tuple[int, ...] = (2,)
    repeat: int = 2
    scenarios: tuple[str, ...] = SCENARIOS
    duration: float = 15.0
    warmup: float = 2.0
    connections: int = 64
    wrk_threads: int = 1
    batch_size: int = 100
    rate: float = 2000.0
    latency_duration: float = 20.0
    hey: bool = True
    soak_duration: float = 600.0
    soak_rate: float = 2000.0
    soak_workers: int = 2
    e2e_rate: float = 2000.0
    e2e_batch: int = 1
    e2e_duration: float = 30.0
    e2e_workers: int = 2
    relay_workers: int = field(default_factory=default_concurrency)
    out: Path = Path("bench/results")
    name: str = ""
    keep_logs: bool = False


# -- request bodies -----------------------------------------------------------------------


def track_event(seq: int) -> dict[str, Any]:
    """A Segment track call of about 1 KB (two products), as a backend SDK sends it."""
    mix = Mix(shares=(("track", 1.0),), shapes=("segment",))
    event = next(generate(1, seed=11, start=seq, mix=mix))
    event.pop("type")
    return event


def body_files(logdir: Path, batch_size: int) -> dict[str, Path]:
    """The single-event body (~1 KB) and the batch body (``batch_size`` events)."""
    single = logdir / "single.json"
    single.write_bytes(orjson.dumps(track_event(0)))
    items = [{**track_event(i), "type": "track"} for i in range(batch_size)]
    batch = logdir / "batch.json"
    batch.write_bytes(orjson.dumps({"batch": items, "sentAt": "2026-03-02T10:20:00.530Z"}))
    return {"single": single, "batch": batch}


# -- what the machine and Redis say ---------------------------------------------------------


def entries_added(client: redis.Redis, stream: str) -> int:
    """Entries ever added to the stream (0 when it does not exist); trimming keeps it."""
    try:
        info = client.xinfo_stream(stream)
    except redis.ResponseError:
        return 0
    return int(info.get("entries-added", info.get(b"entries-added", 0)))


def settled_entries_added(client: redis.Redis, stream: str, timeout_s: float = 15.0) -> int:
    """``entries_added`` once it has stopped moving: requests a load tool abandoned at its
    deadline are still being written for a moment after it exits."""
    last = entries_added(client, stream)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = entries_added(client, stream)
        if now == last:
            return now
        last = now
    return last


class Load:
    """CPU over one measurement: the collector, redis-server, load generators (this
    process and reaped children), and what the rest of the machine used meanwhile."""

    def __init__(self, watcher: ProcWatcher, redis_pid: int) -> None:
        self.watcher = watcher
        self.redis_pid = redis_pid
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        busy, total = system_cpu()
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "busy": busy,
            "total": total,
            "wall": time.monotonic(),
            "collector": sum(self.watcher.cpu_now().values()),
            "redis": cpu_seconds(self.redis_pid) or 0.0,
            "bench": time.process_time(),
            "tools": kids.ru_utime + kids.ru_stime,
        }

    def figures(self) -> dict[str, Any]:
        end = self._read()
        d = {k: end[k] - self.start[k] for k in end}
        ours = d["collector"] + d["redis"] + d["bench"] + d["tools"]
        wall = d["wall"] or 1e-9
        return {
            "wall_s": round(wall, 2),
            "collector_cpu_s": round(d["collector"], 2),
            "redis_cpu_s": round(d["redis"], 2),
            "machine_busy_cores": round(d["busy"] / wall, 2),
            "collector_cores": round(d["collector"] / wall, 2),
            "redis_cores": round(d["redis"] / wall, 2),
            "loadgen_cores": round((d["bench"] + d["tools"]) / wall, 2),
            # Anything else running on the machine meanwhile: other people's work.
            "other_cores": round(max(0.0, d["busy"] - ours) / wall, 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }


def redis_persistence(client: redis.Redis) -> dict[str, int]:
    """Counters that explain a stall on Redis' side: fsyncs delayed by a busy disk, AOF
    rewrites (a fork) performed."""
    info = client.info("persistence")
    return {name: int(info.get(name, 0)) for name in ("aof_delayed_fsync", "aof_rewrites")}


def timeline(out: Outcome, window_s: float = 10.0) -> list[dict[str, Any]]:
    """Requests and p99 latency per window of due time: shows whether a tail is one
    episode (another process, a fork) or the whole run."""
    buckets: dict[int, list[float]] = {}
    t0 = out.due[0] if out.due else 0.0
    for due, answered, status in zip(out.due, out.answered, out.status, strict=True):
        if status == 200:
            buckets.setdefault(int((due - t0) // window_s), []).append(answered - due)
    return [
        {
            "from_s": k * window_s,
            "requests": len(v),
            "p99_ms": round((percentile(v, 99) or 0.0) * 1000, 1),
        }
        for k, v in sorted(buckets.items())
    ]


def outcome_figures(out: Outcome, events_per_request: int = 1) -> dict[str, Any]:
    ok = sum(1 for s in out.status if s == 200)
    lat = out.latencies_s()
    service = out.service_s()

    def ms(q: float, values: list[float] = lat) -> float | None:
        v = percentile(values, q)
        return None if v is None else round(v * 1000, 2)

    return {
        "tool": "bench.collector.loadgen (open loop)",
        "requests": len(out.status),
        "status_200": ok,
        "other_status": sum(1 for s in out.status if s not in (200, -1)),
        "failed": sum(1 for s in out.status if s == -1),
        "achieved_rate": round(len(out.status) / out.wall_s, 1) if out.wall_s else None,
        "sent_late_over_5ms": out.late(),
        "waited_for_a_connection": out.pool_waits,
        "events_per_http_request": events_per_request,
        # From when each request was due (open loop: waits before sending count).
        "p50_ms": ms(50),
        "p95_ms": ms(95),
        "p99_ms": ms(99),
        "p999_ms": ms(99.9),
        "max_ms": round(max(lat) * 1000, 2) if lat else None,
        # From when it was written to the socket: the server alone.
        "service_p50_ms": ms(50, service),
        "service_p99_ms": ms(99, service),
        "timeline": timeline(out),
    }


# -- the run ------------------------------------------------------------------------------


class CollectorBench:
    def __init__(self, opts: Options, logdir: Path, say: Callable[[str], None]) -> None:
        self.opts = opts
        self.logdir = logdir
        self.say = say
        self.procs = Procs(logdir)
        self.redis_url = ""
        self.client: redis.Redis
        self.inbox = Keys(PREFIX).inbox
        self.bodies: dict[str, Path] = {}

    @property
    def redis_pid(self) -> int:
        return self.procs.started[0].pid

    @contextmanager
    def collector(
        self, server: str, workers: int, prefix: str = PREFIX, redis_url: str = ""
    ) -> Iterator[tuple[Collector, ProcWatcher]]:
        coll = Collector(self.procs, server, workers, redis_url or self.redis_url, prefix)
        watcher = ProcWatcher({coll.proc.pid: "server"}).start()
        try:
            yield coll, watcher
        finally:
            watcher.stop()
            coll.stop()

    def measured(
        self, watcher: ProcWatcher, run: Callable[[], dict[str, Any]], events_per_200: int
    ) -> dict[str, Any]:
        """Run one measurement; add the inbox's growth and the machine's load to it."""
        added0 = settled_entries_added(self.client, self.inbox)
        persistence0 = redis_persistence(self.client)
        load = Load(watcher, self.redis_pid)
        figures = run()
        figures["cpu"] = load.figures()
        persistence = redis_persistence(self.client)
        figures["redis"] = {k: v - persistence0[k] for k, v in persistence.items()}
        stored = settled_entries_added(self.client, self.inbox) - added0
        figures["stored_events"] = stored
        figures["events_acknowledged"] = figures["status_200"] * events_per_200
        # Each 200 must be in Redis; the surplus is requests in flight when the tool
        # stopped (stored, the answer never read), at most one per connection.
        figures["stored_minus_acknowledged"] = stored - figures["events_acknowledged"]
        # CPU per event: steadier than a rate on a machine others are using too.
        if figures["events_acknowledged"]:
            per_event = 1e6 / figures["events_acknowledged"]
            figures["collector_cpu_us_per_event"] = round(
                figures["cpu"]["collector_cpu_s"] * per_event, 1
            )
            figures["redis_cpu_us_per_event"] = round(figures["cpu"]["redis_cpu_s"] * per_event, 1)
        return figures

    def wrk_phase(self, coll: Collector, watcher: ProcWatcher, kind: str) -> dict[str, Any]:
        path = "/v1/track" if kind == "single" else "/v1/batch"
        body, o = self.bodies[kind], self.opts
        tools.wrk(coll.url + path, body, AUTH, self.logdir, o.warmup, o.connections, o.wrk_threads)
        per = 1 if kind == "single" else o.batch_size
        figures = self.measured(
            watcher,
            lambda: tools.wrk(
                coll.url + path, body, AUTH, self.logdir, o.duration, o.connections, o.wrk_threads
            ),
            per,
        )
        figures["events_per_s"] = round(figures["requests_per_s"] * per, 1)
        self.client.unlink(self.inbox)
        return figures

    def single_request(self, coll: Collector) -> bytes:
        """The raw HTTP request of one single-event track call, as the open loop sends it."""
        return http_request(
            "127.0.0.1",
            coll.port,
            "/v1/track",
            self.bodies["single"].read_bytes(),
            {"Authorization": AUTH, "Content-Type": "application/json"},
        )

    def latency_phase(self, coll: Collector, watcher: ProcWatcher) -> dict[str, Any]:
        o = self.opts
        data = self.single_request(coll)
        count = int(o.rate * o.latency_duration)
        out: dict[str, Any] = {"offered_rate": o.rate}

        def run() -> dict[str, Any]:
            return outcome_figures(open_loop("127.0.0.1", coll.port, lambda i: data, count, o.rate))

        out["open_loop"] = self.measured(watcher, run, 1)
        if o.hey:
            workers = max(1, int(o.rate // 100))
            out["hey"] = self.measured(
                watcher,
                lambda: tools.hey(
                    coll.url + "/v1/track",
                    self.bodies["single"],
                    AUTH,
                    o.latency_duration,
                    o.rate,
                    workers,
                ),
                1,
            )
        self.client.unlink(self.inbox)
        return out

    def server_runs(self) -> list[dict[str, Any]]:
        runs = []
        wanted = [s for s in ("single", "batch", "latency") if s in self.opts.scenarios]
        if not wanted:
            return runs
        for rep in range(self.opts.repeat):
            for server in self.opts.servers:
                for workers in self.opts.workers:
                    self.say(f"{server}, {workers} processes, run {rep + 1}: {', '.join(wanted)}")
                    run: dict[str, Any] = {"server": server, "workers": workers, "run": rep + 1}
                    with self.collector(server, workers) as (coll, watcher):
                        for kind in ("single", "batch"):
                            if kind in wanted:
                                run[kind] = self.wrk_phase(coll, watcher, kind)
                        if "latency" in wanted:
                            run["latency"] = self.latency_phase(coll, watcher)
                        run["peak_rss_mb_per_process"] = proc_figures(
                            {}, {}, watcher.snapshot(), 0
                        )["peak_rss_mb_max"]
                    runs.append(run)
                    self.say(one_line(run))
        return runs

    def soak(self) -> dict[str, Any]:
        """Offer ``soak_rate`` single-event requests/s for ``soak_duration`` s; RSS of every
        collector process sampled twice a second. The inbox is trimmed as a relay would
        drain it (entries-added still counts every event)."""
        o = self.opts
        self.say(f"soak: {o.soak_rate:g} requests/s for {o.soak_duration:g} s")
        stop = threading.Event()

        def trim() -> None:
            trimmer = redis.Redis.from_url(self.redis_url)
            while not stop.wait(2.0):
                trimmer.xtrim(self.inbox, maxlen=100_000, approximate=True)

        with self.collector("uvicorn", o.soak_workers) as (coll, watcher):
            data = self.single_request(coll)
            count = int(o.soak_rate * o.soak_duration)
            t0 = time.time()
            trimmer = threading.Thread(target=trim, daemon=True)
            trimmer.start()
            try:
                figures = self.measured(
                    watcher,
                    lambda: outcome_figures(
                        open_loop("127.0.0.1", coll.port, lambda i: data, count, o.soak_rate)
                    ),
                    1,
                )
            finally:
                stop.set()
                trimmer.join(5)
            snapshot = watcher.snapshot()
        figures.update(
            offered_rate=o.soak_rate,
            duration_s=o.soak_duration,
            workers=o.soak_workers,
            rss=rss_growth(snapshot, t0, o.soak_duration),
        )
        self.client.unlink(self.inbox)
        return figures

    def e2e(self) -> dict[str, Any]:
        """HTTP in, the relay (Celery worker + beat, as ``python -m bench`` starts them) and
        the emulator out, all on this machine: events/s and send -> accepted latency."""
        o = self.opts
        relay = Bench(
            RelayOptions(workers=o.relay_workers, scenarios=()), self.logdir / "e2e", self.say
        )
        relay.logdir.mkdir(exist_ok=True)
        relay.setup()
        prefix = "e2e"
        try:
            worker, beat = relay.start_relay(prefix, "e2e")
            relay_watch = ProcWatcher({worker.pid: "worker", beat.pid: "beat"}).start()
            dlq = relay.relay_dlq(prefix)
            total = int(o.e2e_rate * o.e2e_duration)
            per = o.e2e_batch
            requests_n = -(-total // per)
            payloads, ulids = relay.take(requests_n * per)
            with self.collector("uvicorn", o.e2e_workers, prefix, relay.redis_url) as (
                coll,
                watcher,
            ):
                bodies = [
                    http_request(
                        "127.0.0.1",
                        coll.port,
                        "/v1/batch",
                        b'{"batch":[' + b",".join(payloads[i * per : (i + 1) * per]) + b"]}",
                        {"Authorization": AUTH, "Content-Type": "application/json"},
                    )
                    for i in range(requests_n)
                ]
                self.say(
                    f"e2e: {o.e2e_rate:g} events/s offered in requests of {per} for "
                    f"{o.e2e_duration:g} s, {o.relay_workers} relay processes"
                )
                req0, ev0 = relay.marks()
                applied0 = relay.applied()
                dlq0 = dlq()
                busy0, _ = system_cpu()
                w0 = time.monotonic()
                outcome = open_loop(
                    "127.0.0.1", coll.port, bodies.__getitem__, requests_n, o.e2e_rate / per
                )
                relay.wait_applied(applied0, requests_n * per, lambda: dlq() - dlq0)
                busy = system_cpu()[0] - busy0
                wall = time.monotonic() - w0
                collector_rss = proc_figures({}, {}, watcher.snapshot(), 0)["peak_rss_mb_max"]
            relay_watch.stop()
            records = relay.emulator.requests(req0)
            applied = sum(r.get("applied", 0) for r in records)
            first_due = outcome.due[0]
            last = max(r["answered_at"] for r in records if r.get("applied"))
            sent_at = {u: outcome.due[i // per] for i, u in enumerate(ulids)}
            http = outcome_figures(outcome, per)
            return {
                "offered_events_per_s": o.e2e_rate,
                "events_per_request": per,
                "duration_s": o.e2e_duration,
                "collector_workers": o.e2e_workers,
                "relay_workers": o.relay_workers,
                "events": requests_n * per,
                "accepted": applied,
                "dead_lettered": dlq() - dlq0,
                "events_per_s": round(applied / (last - first_due), 1),
                "http": http,
                **request_figures(records),
                **latency_figures(latencies(relay.emulator, records, sent_at, ev0)),
                "machine_busy_cores": round(busy / wall, 2),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "collector_peak_rss_mb": collector_rss,
                "relay_peak_rss_mb": proc_figures({}, {}, relay_watch.snapshot(), 0)[
                    "peak_rss_mb_max"
                ],
            }
        finally:
            relay.teardown()

    def run(self) -> dict[str, Any]:
        self.redis_url = self.procs.redis_server()
        self.client = redis.Redis.from_url(self.redis_url)
        self.bodies = body_files(self.logdir, self.opts.batch_size)
        report: dict[str, Any] = {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "code": code_version(),
            "options": {
                **{k: v for k, v in self.opts.__dict__.items() if k != "out"},
                "out": str(self.opts.out),
                "single_body_bytes": self.bodies["single"].stat().st_size,
                "batch_body_bytes": self.bodies["batch"].stat().st_size,
            },
        }
        try:
            report["runs"] = self.server_runs()
            report["summary"] = summary(report["runs"])
            if "soak" in self.opts.scenarios:
                report["soak"] = self.soak()
            if "e2e" in self.opts.scenarios:
                report["e2e"] = self.e2e()
        finally:
            self.procs.stop_all()
        report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return report


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the collector's files differed from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD"),
        "collector_changes": git("status", "--porcelain", "worker/collector", "worker/cli"),
    }


def rss_growth(stats: dict[int, Any], t0: float, duration: float) -> dict[str, Any]:
    """RSS of each process after the first minute (or 10% of a shorter run) and at the end."""
    start_at = t0 + min(60.0, duration * 0.1)
    procs = []
    for pid, st in sorted(stats.items()):
        later = [(t, kb) for t, kb in st.samples if t >= start_at]
        if not later:
            continue
        first, last = later[0][1], later[-1][1]
        procs.append(
            {
                "pid": pid,
                "role": st.role,
                "rss_first_minute_mb": round(first / 1024, 1),
                "rss_end_mb": round(last / 1024, 1),
                "rss_max_mb": round(max(kb for _, kb in later) / 1024, 1),
                "growth_pct": round((last - first) / first * 100, 2),
            }
        )
    workers = [p for p in procs if p["role"] != "server"] or procs
    return {
        "from_s": round(start_at - t0, 1),
        "processes": procs,
        "growth_pct_max": max((p["growth_pct"] for p in workers), default=None),
        "rss_end_mb_max": max((p["rss_end_mb"] for p in workers), default=None),
    }


def _pick(run: dict[str, Any], path: tuple[str, ...]) -> float | None:
    node: Any = run
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, int | float) else None


FIGURES = {
    "single_requests_per_s": ("single", "requests_per_s"),
    "batch_events_per_s": ("batch", "events_per_s"),
    "latency_p50_ms": ("latency", "open_loop", "p50_ms"),
    "latency_p99_ms": ("latency", "open_loop", "p99_ms"),
    "hey_p99_ms": ("latency", "hey", "p99_ms"),
    "other_cores_single": ("single", "cpu", "other_cores"),
}


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per server and worker count: every run's value of each figure, and the median."""
    out = []
    keys = sorted({(r["server"], r["workers"]) for r in runs})
    for server, workers in keys:
        mine = [r for r in runs if r["server"] == server and r["workers"] == workers]
        row: dict[str, Any] = {"server": server, "workers": workers, "runs": len(mine)}
        for name, path in FIGURES.items():
            values = [v for v in (_pick(r, path) for r in mine) if v is not None]
            if values:
                row[name] = round(statistics.median(values), 2)
                row[f"{name}_all"] = values
        out.append(row)
    return out


def one_line(run: dict[str, Any]) -> str:
    parts = [f"{run['server']} x{run['workers']}"]
    for name, path in FIGURES.items():
        v = _pick(run, path)
        if v is not None:
            parts.append(f"{name}={v:,.1f}")
    return "  ".join(parts)
