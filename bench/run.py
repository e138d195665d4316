"""The benchmark's scenarios over real processes: redis-server, the emulator, Celery.

Every timing comes from the emulator's own records (when each request arrived and was
answered, and which stored events each one added) and from the enqueue timestamps kept
here; CPU and RSS come from /proc of the worker processes.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.events import WORKFLOW_TOML, Mix, generate, ulid_of
from bench.procs import Procs, ProcStats, ProcWatcher, cpu_seconds, system_cpu, wait_for
from worker.emulator import EmulatorClient
from worker.keys import CONSUMER_GROUP, Keys
from worker.producer import encode_event
from worker.sizing import default_concurrency

SITE_ID = "bench-site"
API_KEY = "bench-key-0123456789abcdef"
TRACK_PATHS = ("/api/v1/", "/api/v2/")
CHUNK = 500  # events per enqueue pipeline
EVENTS_PAGE = 50_000  # stored events read from the emulator per call


@dataclass
class Options:
    events: int = 100_000
    workers: int = default_concurrency()
    offered_rate: float = 1000.0
    duration: float = 30.0
    baseline: bool = True
    baseline_events: int = 1000
    baseline_concurrency: int | None = None
    max_rps: int = 100
    emulator_rps: float = 100.0
    latency_ms: float = 50.0
    backlog: list[int] = field(default_factory=list)
    backlog_window: float = 20.0
    scenarios: tuple[str, ...] = ("throughput", "latency")
    relay_env: dict[str, str] = field(default_factory=dict)
    out: Path = Path("bench/results")
    keep_logs: bool = False
    seed: int = 7
    mix: Mix = field(default_factory=Mix)
    timeout: float = 600.0
    name: str = ""


# -- measurements from the emulator's records ---------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def track_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["path"].startswith(TRACK_PATHS)]


def request_figures(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests sent, 429s, and events per accepted request, from the emulator's records."""
    track = track_records(records)
    ok = [r for r in track if r["status"] in (200, 207)]
    applied = sum(r.get("applied", 0) for r in track)
    return {
        "requests": len(track),
        "requests_accepted": len(ok),
        "status_429": sum(1 for r in track if r["status"] == 429),
        "other_errors": sum(1 for r in track if r["status"] not in (200, 207, 429)),
        "operations_applied": applied,
        "events_per_request": round(applied / len(ok), 1) if ok else None,
        "peak_requests_per_s": peak_rate([r["time"] for r in track]),
    }


def peak_rate(times: list[float]) -> int:
    """The most requests that arrived in any rolling one-second window."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def accepted_times(records: list[dict[str, Any]]) -> dict[int, float]:
    """Stored-event sequence number -> when the request that carried it was answered."""
    out: dict[int, float] = {}
    for r in records:
        span = r.get("events")
        if span and r["status"] in (200, 207):
            for seq in range(span[0], span[1]):
                out[seq] = r["answered_at"]
    return out


def latencies(
    emulator: EmulatorClient, records: list[dict[str, Any]], enqueued: dict[str, float], since: int
) -> list[float]:
    """Enqueue -> accepted seconds for every stored event this phase enqueued."""
    answered = accepted_times(records)
    out: list[float] = []
    while True:
        page = emulator.events(since, limit=EVENTS_PAGE)
        for ev in page:
            t_in = enqueued.get(ev["id"]) if ev["id"] else None
            t_out = answered.get(ev["seq"])
            if t_in is not None and t_out is not None:
                out.append(t_out - t_in)
        if len(page) < EVENTS_PAGE:
            return out
        since = page[-1]["seq"] + 1


def latency_figures(values: list[float]) -> dict[str, Any]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 1)

    return {
        "events_timed": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p95_ms": ms(percentile(values, 95)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values) if values else None),
    }


def proc_figures(
    before: dict[int, float],
    after: dict[int, float],
    stats: dict[int, ProcStats],
    events: int,
    grow_from: float | None = None,
) -> dict[str, Any]:
    """CPU seconds per 1,000 events and peak RSS per process, from /proc."""
    cpu = sum(after.get(pid, 0.0) - before.get(pid, 0.0) for pid in after)
    procs = []
    for pid, st in sorted(stats.items()):
        item: dict[str, Any] = {
            "pid": pid,
            "role": st.role,
            "peak_rss_mb": round(st.peak_rss_kb / 1024, 1),
            "cpu_s": round(after.get(pid, st.cpu_last) - before.get(pid, st.cpu_first), 2),
        }
        if grow_from is not None:
            early = [rss for t, rss in st.samples if t >= grow_from]
            if early:
                item["rss_start_mb"] = round(early[0] / 1024, 1)
                item["rss_end_mb"] = round(early[-1] / 1024, 1)
                item["rss_growth_pct"] = round((early[-1] - early[0]) / early[0] * 100, 1)
        procs.append(item)
    out: dict[str, Any] = {
        "processes": procs,
        "peak_rss_mb_max": max((p["peak_rss_mb"] for p in procs), default=None),
        "cpu_s_total": round(cpu, 2),
        "cpu_s_per_1000_events": round(cpu / events * 1000, 3) if events else None,
    }
    growth = [p["rss_growth_pct"] for p in procs if "rss_growth_pct" in p]
    if growth:
        out["rss_growth_pct_max"] = max(growth)
    return out


class CpuMeter:
    """CPU seconds over a phase: the emulator, redis-server, this process, the machine."""

    def __init__(self, infra: dict[str, int]) -> None:
        self.infra = infra
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        busy, total = system_cpu()
        out = {"machine_busy": busy, "machine_total": total, "bench": time.process_time()}
        for name, pid in self.infra.items():
            out[name] = cpu_seconds(pid) or 0.0
        return out

    def figures(self, events: int, wall_s: float, workers_cpu: float) -> dict[str, Any]:
        end = self._read()
        d = {k: end[k] - self._start[k] for k in end}
        ours = workers_cpu + sum(d[name] for name in self.infra) + d["bench"]
        return {
            "wall_s": round(wall_s, 2),
            "machine_busy_cores": round(d["machine_busy"] / wall_s, 2) if wall_s else None,
            "cpu_s_per_1000_events_by_process": {
                name: round(d[name] / events * 1000, 3) if events else None
                for name in (*self.infra, "bench")
            },
            # CPU used on this machine during the phase by anything not part of the run.
            "other_cpu_s": round(max(0.0, d["machine_busy"] - ours), 2),
        }


# -- enqueueing ------------------------------------------------------------------------


def encoded_events(count: int, seed: int, start: int, mix: Mix) -> tuple[list[bytes], list[str]]:
    events = list(generate(count, seed=seed, start=start, mix=mix))
    return [encode_event(e) for e in events], [ulid_of(e) for e in events]


def xadd_all(client: redis.Redis, inbox: str, payloads: Sequence[bytes]) -> None:
    """Add raw events as fast as one pipelined producer can."""
    for i in range(0, len(payloads), CHUNK):
        pipe = client.pipeline(transaction=False)
        for data in payloads[i : i + CHUNK]:
            pipe.xadd(inbox, {"event": data})
        pipe.execute()


def paced(
    count_for: Callable[[float], int],
    total: int,
    send: Callable[[int, int], None],
    tick_s: float = 0.01,
) -> None:
    """Call ``send(start, stop)`` every tick with the events due by then."""
    t0 = time.time()
    done = 0
    while done < total:
        due = min(total, count_for(time.time() - t0))
        if due > done:
            send(done, due)
            done = due
        time.sleep(tick_s)


# -- the run ---------------------------------------------------------------------------


class Bench:
    def __init__(self, opts: Options, logdir: Path, say: Callable[[str], None]) -> None:
        self.opts = opts
        self.logdir = logdir
        self.say = say
        self.procs = Procs(logdir)
        self.redis_url = ""
        self.emulator_url = ""
        self.emulator: EmulatorClient
        self.seq = 0  # next event number, so phases never reuse a message id
        self._relay_ready_at = 0.0

    def setup(self) -> None:
        self.redis_url = self.procs.redis_server()
        self.emulator_url = self.procs.emulator(
            SITE_ID, API_KEY, self.opts.emulator_rps, self.opts.latency_ms
        )
        self.emulator = EmulatorClient(self.emulator_url, timeout_s=120)
        (self.logdir / "workflow.toml").write_text(WORKFLOW_TOML)

    def teardown(self) -> None:
        self.procs.stop_all()

    def infra(self) -> dict[str, int]:
        return {"redis": self.procs.started[0].pid, "emulator": self.procs.started[1].pid}

    def take(self, count: int) -> tuple[list[bytes], list[str]]:
        payloads, ulids = encoded_events(count, self.opts.seed, self.seq, self.opts.mix)
        self.seq += count
        return payloads, ulids

    def marks(self) -> tuple[int, int]:
        c = self.emulator.counters()
        return c["requests_recorded"], c["events_stored"]

    def applied(self) -> int:
        """Operations the emulator has applied so far (a cheap counter read)."""
        return sum(self.emulator.counters()["operations"].values())

    def wait_applied(self, base: int, expected: int, dlq: Callable[[], int]) -> None:
        """Until the emulator has applied ``expected`` operations more than ``base``
        (events dead-lettered by the relay count as done, and are reported)."""
        deadline = time.monotonic() + self.opts.timeout
        while time.monotonic() < deadline:
            if self.applied() - base + dlq() >= expected:
                return
            time.sleep(0.25)
        raise RuntimeError(f"timed out: {expected} events not all accepted")

    # -- the relay ---------------------------------------------------------------------

    def relay_env(self, prefix: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
        env.update(
            CIO_SITE_ID=SITE_ID,
            CIO_API_KEY=API_KEY,
            CIO_TRACK_URL=self.emulator_url,
            CIO_REDIS_URL=self.redis_url,
            CIO_REDIS_PREFIX=prefix,
            CIO_WORKFLOW_FILE=str(self.logdir / "workflow.toml"),
            CIO_MAX_RPS=str(self.opts.max_rps),
            CIO_LOG_FORMAT="json",
        )
        env.update(self.opts.relay_env)
        return env

    def start_relay(self, prefix: str, tag: str) -> tuple[Any, Any]:
        env = self.relay_env(prefix)
        celery = [sys.executable, "-m", "celery", "-A", "worker.app"]
        worker = self.procs.spawn(
            [
                *celery,
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.opts.workers}",
                "-n",
                f"bench-{tag}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            f"relay-{tag}-worker.log",
            env,
        )
        beat = self.procs.spawn(
            [*celery, "beat", "--loglevel=INFO", "-s", str(self.logdir / f"beat-{tag}")],
            f"relay-{tag}-beat.log",
            env,
        )
        client = redis.Redis.from_url(self.redis_url)
        keys = Keys(prefix)

        def ready() -> bool:
            groups = client.xinfo_groups(keys.inbox)
            return any(g["name"] in (CONSUMER_GROUP, CONSUMER_GROUP.encode()) for g in groups)

        wait_for(ready, 60, "the relay's first drain")
        self._relay_ready_at = time.monotonic()
        return worker, beat

    def relay_dlq(self, prefix: str) -> Callable[[], int]:
        client = redis.Redis.from_url(self.redis_url)
        key = Keys(prefix).dlq
        return lambda: int(client.xlen(key))

    def relay_phases(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        prefix = "bench"
        client = redis.Redis.from_url(self.redis_url)
        inbox = Keys(prefix).inbox
        worker, beat = self.start_relay(prefix, "main")
        watcher = ProcWatcher({worker.pid: "worker"}).start()
        beat_watch = ProcWatcher({beat.pid: "beat"}).start()
        dlq = self.relay_dlq(prefix)
        try:
            if "throughput" in self.opts.scenarios and self.opts.events:
                out["throughput"] = self.burst(
                    "relay", lambda p: xadd_all(client, inbox, p), watcher, dlq
                )
            if "latency" in self.opts.scenarios and self.opts.duration > 0:
                out["latency"] = self.steady(client, inbox, watcher, dlq)
        finally:
            watcher.stop()
            beat_watch.stop()
            self.procs.stop(worker)
            self.procs.stop(beat)
        out["beat"] = {
            "peak_rss_mb": max(
                (round(s.peak_rss_kb / 1024, 1) for s in beat_watch.snapshot().values()),
                default=None,
            )
        }
        out["dead_lettered"] = dlq()
        return out

    def burst(
        self,
        label: str,
        enqueue: Callable[[list[bytes]], None],
        watcher: ProcWatcher,
        dlq: Callable[[], int],
        count: int | None = None,
    ) -> dict[str, Any]:
        """Enqueue ``count`` events at once; time first enqueue -> last event accepted."""
        count = count or self.opts.events
        payloads, ulids = self.take(count)
        self.say(f"{label}: enqueueing {count} events at once")
        req0, ev0 = self.marks()
        applied0 = self.applied()
        dlq0 = dlq()
        cpu0 = watcher.cpu_now()
        meter = CpuMeter(self.infra())
        t0 = time.time()
        enqueue(payloads)
        t_enqueued = time.time()
        self.wait_applied(applied0, count, lambda: dlq() - dlq0)
        cpu1 = watcher.cpu_now()
        wall = time.time() - t0
        records = self.emulator.requests(req0)
        applied = sum(r.get("applied", 0) for r in records)
        last = max(r["answered_at"] for r in records if r.get("applied"))
        enqueued = dict.fromkeys(ulids, t0)
        workers_cpu = sum(cpu1.get(p, 0.0) - cpu0.get(p, 0.0) for p in cpu1)
        return {
            "cpu": meter.figures(applied, wall, workers_cpu),
            "events": count,
            "accepted": applied,
            "dead_lettered": dlq() - dlq0,
            "enqueue_s": round(t_enqueued - t0, 3),
            "elapsed_s": round(last - t0, 3),
            "events_per_s": round(applied / (last - t0), 1),
            **request_figures(records),
            "latency_from_first_enqueue": latency_figures(
                latencies(self.emulator, records, enqueued, ev0)
            ),
            **proc_figures(cpu0, cpu1, watcher.snapshot(), applied),
        }

    def steady(
        self, client: redis.Redis, inbox: str, watcher: ProcWatcher, dlq: Callable[[], int]
    ) -> dict[str, Any]:
        """Offer ``offered_rate`` events/s for ``duration`` s; enqueue -> accepted latency."""
        rate, duration = self.opts.offered_rate, self.opts.duration
        total = int(rate * duration)
        payloads, ulids = self.take(total)
        self.say(f"relay: offering {rate:g} events/s for {duration:g} s ({total} events)")
        req0, ev0 = self.marks()
        applied0 = self.applied()
        dlq0 = dlq()
        enqueued: dict[str, float] = {}
        cpu0 = watcher.cpu_now()
        meter = CpuMeter(self.infra())
        t0 = time.time()

        def send(start: int, stop: int) -> None:
            now = time.time()
            pipe = client.pipeline(transaction=False)
            for i in range(start, stop):
                pipe.xadd(inbox, {"event": payloads[i]})
                enqueued[ulids[i]] = now
            pipe.execute()

        paced(lambda elapsed: int(elapsed * rate), total, send)
        t_sent = time.time()
        self.wait_applied(applied0, total, lambda: dlq() - dlq0)
        cpu1 = watcher.cpu_now()
        wall = time.time() - t0
        records = self.emulator.requests(req0)
        applied = sum(r.get("applied", 0) for r in records)
        last = max(r["answered_at"] for r in records if r.get("applied"))
        workers_cpu = sum(cpu1.get(p, 0.0) - cpu0.get(p, 0.0) for p in cpu1)
        return {
            "cpu": meter.figures(applied, wall, workers_cpu),
            "offered_rate": rate,
            "duration_s": duration,
            "events": total,
            "achieved_offered_rate": round(total / (t_sent - t0), 1),
            "accepted": applied,
            "dead_lettered": dlq() - dlq0,
            "events_per_s": round(applied / (last - t0), 1),
            **request_figures(records),
            **latency_figures(latencies(self.emulator, records, enqueued, ev0)),
            **proc_figures(
                cpu0, cpu1, watcher.snapshot(), applied, grow_from=t0 + min(60.0, duration * 0.1)
            ),
        }

    def backlog_phase(self, size: int) -> dict[str, Any]:
        """The rate while ``size`` events wait in the inbox.

        The backlog is built in a staging stream (with the relay's consumer group) while
        the workers already run, idle, in their drain tasks; one RENAME then makes it the
        inbox, so the timing starts with every worker ready and ``size`` events waiting.
        The rate is taken over at most ``backlog_window`` seconds from that moment.
        """
        prefix = f"bench-backlog-{size}"
        client = redis.Redis.from_url(self.redis_url)
        inbox = Keys(prefix).inbox
        staging = f"{prefix}:staging"
        worker, beat = self.start_relay(prefix, f"backlog{size}")
        dlq = self.relay_dlq(prefix)
        watcher = ProcWatcher({worker.pid: "worker"}).start()
        try:
            self.say(f"backlog {size}: building it beside the inbox")
            left = size
            while left > 0:
                payloads, _ = self.take(min(100_000, left))
                xadd_all(client, staging, payloads)
                left -= len(payloads)
            client.xgroup_create(staging, CONSUMER_GROUP, id="0")
            time.sleep(max(0.0, 6.0 - (time.monotonic() - self._relay_ready_at)))
            req0, _ = self.marks()
            applied0 = self.applied()
            cpu0 = watcher.cpu_now()
            deadline = time.monotonic() + self.opts.timeout
            t0 = time.time()
            client.rename(staging, inbox)
            while time.monotonic() < deadline:
                applied = self.applied() - applied0
                if applied + dlq() >= size or time.time() - t0 >= self.opts.backlog_window:
                    break
                time.sleep(0.1)
            cpu1 = watcher.cpu_now()
        finally:
            watcher.stop()
            self.procs.stop(worker)
            self.procs.stop(beat)
        records = track_records(self.emulator.requests(req0))
        end = min(max(r["answered_at"] for r in records), t0 + self.opts.backlog_window)
        in_window = [r for r in records if r["answered_at"] <= end]
        applied = sum(r.get("applied", 0) for r in in_window)
        left_over = int(client.xlen(inbox))
        client.delete(inbox)
        # Like for like: how fast the first N events were accepted, N the smallest backlog
        # compared, so a big backlog is not flattered by having no tail to finish.
        first_n = min(self.opts.backlog)
        done = 0
        first_n_s = None
        for r in sorted(records, key=lambda r: r["answered_at"]):
            done += r.get("applied", 0)
            if done >= first_n:
                first_n_s = r["answered_at"] - t0
                break
        return {
            "backlog": size,
            "first_n": first_n,
            "first_n_events_per_s": round(done / first_n_s, 1) if first_n_s else None,
            "window_s": round(end - t0, 2),
            "accepted_in_window": applied,
            "events_per_s": round(applied / (end - t0), 1),
            "left_in_inbox": left_over,
            **request_figures(in_window),
            **proc_figures(cpu0, cpu1, watcher.snapshot(), applied),
        }

    # -- the baseline ------------------------------------------------------------------

    def baseline_phase(self) -> dict[str, Any]:
        from bench import baseline

        broker = self.redis_url.rsplit("/", 1)[0] + "/1"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
        env.update(
            BENCH_BASELINE_BROKER=broker,
            BENCH_BASELINE_URL=self.emulator_url,
            BENCH_BASELINE_SITE_ID=SITE_ID,
            BENCH_BASELINE_API_KEY=API_KEY,
        )
        concurrency = self.opts.baseline_concurrency or self.opts.workers
        worker = self.procs.spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.baseline",
                "worker",
                "--loglevel=WARNING",
                f"--concurrency={concurrency}",
                "-n",
                "bench-baseline@%h",
                "--without-mingle",
                "--without-gossip",
            ],
            "baseline-worker.log",
            env,
        )
        baseline.app.conf.broker_url = broker
        conn = redis.Redis.from_url(broker)

        def ready() -> bool:
            return bool(baseline.app.control.ping(timeout=0.5))

        wait_for(ready, 60, "the baseline worker")
        watcher = ProcWatcher({worker.pid: "worker"}).start()
        try:

            def enqueue(payloads: list[bytes]) -> None:
                with baseline.app.producer_or_acquire() as producer:
                    for data in payloads:
                        baseline.post_event.apply_async(
                            (json.loads(data),), producer=producer, ignore_result=True
                        )

            result = self.burst(
                "baseline", enqueue, watcher, lambda: 0, count=self.opts.baseline_events
            )
        finally:
            watcher.stop()
            self.procs.stop(worker)
            conn.flushdb()
        result["concurrency"] = concurrency
        result["rate_limit"] = baseline.RATE_LIMIT
        return result

    def run(self) -> dict[str, Any]:
        self.setup()
        report: dict[str, Any] = {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "options": options_dict(self.opts),
        }
        try:
            report["relay"] = self.relay_phases()
            if self.opts.backlog:
                report["backlog"] = [self.backlog_phase(n) for n in self.opts.backlog]
                rates = [b["events_per_s"] for b in report["backlog"]]
                report["backlog_rate_ratio"] = round(min(rates) / max(rates), 3)
                firsts = [b["first_n_events_per_s"] or 0.0 for b in report["backlog"]]
                if max(firsts):
                    report["backlog_first_n_rate_ratio"] = round(min(firsts) / max(firsts), 3)
            if self.opts.baseline and self.opts.baseline_events:
                report["baseline"] = self.baseline_phase()
                relay_rate = report["relay"].get("throughput", {}).get("events_per_s")
                base_rate = report["baseline"]["events_per_s"]
                if relay_rate and base_rate:
                    report["speedup_vs_baseline"] = round(relay_rate / base_rate, 1)
            report["emulator"] = self.emulator.counters()
        finally:
            self.teardown()
        return report


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def options_dict(opts: Options) -> dict[str, Any]:
    d = dict(opts.__dict__)
    d["out"] = str(opts.out)
    d["scenarios"] = list(opts.scenarios)
    d["mix"] = opts.mix.describe()
    return d
