"""The collector as real processes: ``cio-relay collect`` (uvicorn) or granian serving the
same ASGI app, started with its own sources file and stopped with SIGTERM."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import requests

from bench.procs import Procs, free_port, wait_for

SERVERS = ("uvicorn", "granian")
WRITE_KEY = "bench-server-write-key"
SOURCES_TOML = f"""\
[sources.bench_backend]
kind = "server"
write_key = "{WRITE_KEY}"
"""


def collector_argv(server: str, workers: int, port: int) -> list[str]:
    """The command line: ``cio-relay collect`` for uvicorn (the shipped way), granian with
    the same app factory, loop and backlog for the comparison."""
    bindir = Path(sys.executable).parent
    if server == "uvicorn":
        return [
            sys.executable,
            "-c",
            "import sys; from worker.cli.main import main; sys.exit(main())",
            "collect",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    if server == "granian":
        binary = shutil.which("granian", path=str(bindir)) or shutil.which("granian")
        if binary is None:
            raise RuntimeError("granian is not installed (pip install granian, for comparison)")
        return [
            binary,
            "--interface",
            "asgi",
            "--factory",
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "2048",
            "worker.collector.app:create_app",
        ]
    raise ValueError(f"unknown server {server!r}; choose from {SERVERS}")


def collector_env(logdir: Path, redis_url: str, prefix: str, max_lag: int) -> dict[str, str]:
    sources = logdir / "sources.toml"
    if not sources.exists():
        sources.write_text(SOURCES_TOML)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
    env.update(
        CIO_REDIS_URL=redis_url,
        CIO_REDIS_PREFIX=prefix,
        CIO_SOURCES_FILE=str(sources),
        CIO_COLLECT_MAX_LAG=str(max_lag),
        CIO_LOG_FORMAT="json",
        CIO_LOG_LEVEL="WARNING",
    )
    return env


class Collector:
    """One running collector: its root process and where it listens."""

    def __init__(
        self,
        procs: Procs,
        server: str,
        workers: int,
        redis_url: str,
        prefix: str,
        max_lag: int = 1_000_000_000,
    ) -> None:
        self.procs = procs
        self.server = server
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = collector_env(procs.logdir, redis_url, prefix, max_lag)
        self.proc = procs.spawn(
            collector_argv(server, workers, self.port), f"collector-{server}-{workers}.log", env
        )
        wait_for(self._healthy, 60, f"the collector ({server}, {workers} processes)")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the collector exited with {self.proc.returncode}")
        return requests.get(f"{self.url}/health", timeout=1).status_code == 200

    def stop(self) -> None:
        self.procs.stop(self.proc)
        self.procs.started.remove(self.proc)
