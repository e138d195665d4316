"""wrk (closed loop, as fast as the server answers) and hey (rate-limited per worker),
both from Debian, run as child processes; their figures parsed into dicts."""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
from pathlib import Path
from typing import Any

# wrk calls done() once at the end; it prints one JSON line the bench reads back.
WRK_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "{auth}"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {{"requests":%d,"duration_us":%d,"bytes":%d,"non_2xx":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max))
end
"""


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} is not installed (Debian: apt-get install -y wrk hey)")
    return path


def children_cpu_s() -> float:
    """CPU seconds of this process' reaped children so far (wrk, hey)."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def wrk(
    url: str,
    body_file: Path,
    auth: str,
    script_dir: Path,
    duration_s: float,
    connections: int,
    threads: int,
) -> dict[str, Any]:
    """Run wrk for ``duration_s`` posting ``body_file``; its counts and latency percentiles."""
    script = script_dir / f"wrk-{body_file.stem}.lua"
    script.write_text(WRK_LUA.format(auth=auth, body=body_file))
    cpu0 = children_cpu_s()
    proc = subprocess.run(
        [
            require("wrk"),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr.strip()[:500]}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {proc.stdout[-500:]}")
    raw = json.loads(line[len("WRK_JSON ") :])
    seconds = raw["duration_us"] / 1e6
    ok = raw["requests"] - raw["non_2xx"]
    return {
        "tool": "wrk",
        "threads": threads,
        "connections": connections,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "status_200": ok,
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["connect_errors"]
        + raw["read_errors"]
        + raw["write_errors"]
        + raw["timeouts"],
        "requests_per_s": round(ok / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p95_ms": round(raw["p95_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "loadgen_cpu_s": round(children_cpu_s() - cpu0, 2),
    }


_HEY_PCT = re.compile(r"^\s*(\d+)%\s+in\s+([\d.]+)\s+secs", re.M)
_HEY_STATUS = re.compile(r"^\s*\[(\d+)\]\s+(\d+)\s+responses", re.M)
_HEY_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")


def hey(
    url: str, body_file: Path, auth: str, duration_s: float, rate: float, workers: int
) -> dict[str, Any]:
    """Run hey at ``rate`` requests/s in all (``workers`` each at rate/workers, closed loop)."""
    per_worker = rate / workers
    cpu0 = children_cpu_s()
    proc = subprocess.run(
        [
            require("hey"),
            "-z",
            f"{max(1, round(duration_s))}s",
            "-c",
            str(workers),
            "-q",
            f"{per_worker:g}",
            "-m",
            "POST",
            "-T",
            "application/json",
            "-H",
            f"Authorization: {auth}",
            "-D",
            str(body_file),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hey failed: {proc.stderr.strip()[:500]}")
    out = proc.stdout
    pct = {int(p): float(s) * 1000 for p, s in _HEY_PCT.findall(out)}
    statuses = {int(code): int(n) for code, n in _HEY_STATUS.findall(out)}
    rps = _HEY_RPS.search(out)
    return {
        "tool": "hey",
        "workers": workers,
        "offered_rate": rate,
        "requests_per_s": float(rps.group(1)) if rps else None,
        "status_200": statuses.get(200, 0),
        "other_status": sum(n for code, n in statuses.items() if code != 200),
        "p50_ms": pct.get(50),
        "p95_ms": pct.get(95),
        "p99_ms": pct.get(99),
        "loadgen_cpu_s": round(children_cpu_s() - cpu0, 2),
    }
