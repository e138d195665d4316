"""The processes a benchmark run starts, and what /proc says about them.

Every figure about a worker (peak RSS, CPU seconds) is read from ``/proc/<pid>`` of the
real process ids, the Celery main process and its prefork children alike, so it can be
checked from outside with ``ps`` or ``/proc`` while the run goes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from worker.redisconn import local_server_argv

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


# -- /proc -------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all its threads' children)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found.extend(int(c) for c in fh.read().split())
    except OSError:
        pass
    return found


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (not its children), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB: the resident set now, and its peak (the kernel's own record)."""
    rss = hwm = None
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        return None
    if rss is None or hwm is None:
        return None
    return rss, hwm


def system_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class ProcStats:
    """What was seen of one process: first and last CPU reading, RSS samples, peak."""

    pid: int
    role: str
    cpu_first: float = 0.0
    cpu_last: float = 0.0
    peak_rss_kb: int = 0
    samples: list[tuple[float, int]] = field(default_factory=list)


class ProcWatcher:
    """Samples /proc for a set of root pids and their children every ``interval_s``."""

    def __init__(self, roots: dict[int, str], interval_s: float = 0.5) -> None:
        self.roots = roots
        self.interval_s = interval_s
        self.stats: dict[int, ProcStats] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="proc-watcher", daemon=True)

    def start(self) -> ProcWatcher:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def pids(self) -> dict[int, str]:
        found: dict[int, str] = {}
        for pid, role in self.roots.items():
            found[pid] = role
            for child in children(pid):
                found[child] = f"{role}-child"
        return found

    def sample(self) -> None:
        now = time.time()
        with self._lock:
            for pid, role in self.pids().items():
                cpu, mem = cpu_seconds(pid), memory_kb(pid)
                if cpu is None or mem is None:
                    continue
                st = self.stats.get(pid)
                if st is None:
                    st = self.stats[pid] = ProcStats(pid, role, cpu_first=cpu)
                st.cpu_last = cpu
                st.peak_rss_kb = max(st.peak_rss_kb, mem[1], mem[0])
                st.samples.append((now, mem[0]))

    def cpu_now(self) -> dict[int, float]:
        """CPU seconds of every watched process right now."""
        out: dict[int, float] = {}
        for pid in self.pids():
            cpu = cpu_seconds(pid)
            if cpu is not None:
                out[pid] = cpu
        return out

    def snapshot(self) -> dict[int, ProcStats]:
        with self._lock:
            return {
                pid: ProcStats(
                    s.pid, s.role, s.cpu_first, s.cpu_last, s.peak_rss_kb, list(s.samples)
                )
                for pid, s in self.stats.items()
            }


# -- the processes -----------------------------------------------------------------------


class Procs:
    """Starts and stops the run's processes; logs go to ``logdir``."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(
        self, argv: list[str], log: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = open(self.logdir / log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append(proc)
        return proc

    def redis_server(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        port = free_port()
        data = self.logdir / "redis"
        data.mkdir(exist_ok=True)
        self.spawn(local_server_argv(binary, port, data), "redis.log")
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        wait_for(client.ping, 10, "redis-server")
        return url

    def emulator(self, site_id: str, api_key: str, rps: float, latency_ms: float) -> str:
        env = {**os.environ, "BENCH_EMULATOR_KEY": api_key}
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "worker.emulator",
            "--port",
            str(port),
            "--site-id",
            site_id,
            "--api-key-env",
            "BENCH_EMULATOR_KEY",
            "--lean",
            "--max-recorded",
            "1000000",
            "--json",
            "--rate-limit-rps",
            str(rps),
            "--latency-ms",
            str(latency_ms),
        ]
        self.spawn(argv, "emulator.log", env)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            import requests

            return requests.get(f"{url}/_emulator/health", timeout=1).json()["ok"] is True

        wait_for(up, 15, "the emulator")
        return url

    def stop(self, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


def dump(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def run_and_report(
    run: Callable[[Path, Callable[[str], None]], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    *,
    out: Path,
    name: str | None,
    name_prefix: str,
    log_prefix: str,
    keep_logs: bool,
) -> int:
    """The shell of every benchmark command: a log folder, timestamped progress lines, the
    JSON under ``out`` (named ``name``, else ``name_prefix-<time>``) and the printed table; the
    logs are kept when the run fails or ``keep_logs`` says so."""
    out.mkdir(parents=True, exist_ok=True)
    logdir = Path(tempfile.mkdtemp(prefix=log_prefix))

    def say(msg: str) -> None:
        sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {msg}\n")
        sys.stderr.flush()

    say(f"logs in {logdir}")
    try:
        report = run(logdir, say)
    except Exception:
        say(f"failed; logs kept in {logdir}")
        raise
    path = out / f"{name or time.strftime(f'{name_prefix}-%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    dump(path, report)
    print(table(report))
    print(f"JSON: {path}")
    if not keep_logs:
        shutil.rmtree(logdir, ignore_errors=True)
    return 0
