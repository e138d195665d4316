"""The collector as a real process for integration tests, and a raw HTTP client for the
requests ``requests`` cannot send (slow bodies, chunked bodies past the limit)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
import requests

from tests.integration.conftest import ROOT, free_port, wait_until
from worker.keys import Keys

CLIENT_KEY = "web-key-0123456789"
SERVER_KEY = "srv-secret-key-9876543210"
SERVER_KEY_ENV = "IT_BACKEND_WRITE_KEY"
ORIGIN = "http://127.0.0.1:8000"
OTHER_ORIGIN = "http://evil.example:8000"
SOURCES_TOML = f"""
[sources.web]
kind = "client"
write_key = "{CLIENT_KEY}"
origins = ["{ORIGIN}"]

[sources.backend]
kind = "server"
write_key_env = "{SERVER_KEY_ENV}"
"""


def basic(key: str) -> dict[str, str]:
    """The Authorization header SDKs send: the write key as the Basic username."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def collector_env(redis_url: str, prefix: str, workdir: Path, **extra: str) -> dict[str, str]:
    """A collector's environment: Redis, a sources file, and no Customer.io credentials."""
    sources = workdir / "sources.toml"
    sources.write_text(SOURCES_TOML)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
    env.update(
        CIO_REDIS_URL=redis_url,
        CIO_REDIS_PREFIX=prefix,
        CIO_SOURCES_FILE=str(sources),
        CIO_LOG_FORMAT="json",
        CIO_LOG_LEVEL="DEBUG",
        PYTHONPATH=str(ROOT),
        **{SERVER_KEY_ENV: SERVER_KEY},
    )
    env.update(extra)
    return env


class Collector:
    """``cio-relay collect`` in its own process group, with its output in files."""

    def __init__(self, env: dict[str, str], logdir: Path, *, workers: int = 1) -> None:
        self.env = env
        self.logdir = logdir
        self.workers = workers
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> Collector:
        """Spawn it (on the same port as before, if restarted) and wait for GET /health."""
        self.starts += 1
        out = open(self.logdir / f"collector{self.starts}.out", "wb")  # noqa: SIM115
        err = open(self.logdir / f"collector{self.starts}.err", "wb")  # noqa: SIM115
        argv = [sys.executable, "-m", "worker.cli.main", "collect", "--port", str(self.port)]
        argv += ["--workers", str(self.workers)]
        self.proc = subprocess.Popen(
            argv, env=self.env, cwd=ROOT, stdout=out, stderr=err, start_new_session=True
        )
        wait_until(self._answers, timeout_s, f"the collector on {self.url} ({self.output()})")
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the collector exited {self.proc.returncode}: {self.output()}")
        try:
            return requests.get(f"{self.url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def pids(self) -> list[int]:
        """Every live process of its group (the server and its worker processes)."""
        if self.proc is None:
            return []
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def live_pids(self) -> list[int]:
        """Its processes that still run (an exited child may linger a moment as a zombie)."""
        return [pid for pid in self.pids() if _state(pid) not in ("Z", "X", None)]

    def stop(self, timeout_s: float = 40.0) -> int:
        """SIGTERM, wait for the exit code; the group is killed if it outlives ``timeout_s``."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group (what a crashed container looks like)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def output(self) -> str:
        """Everything it wrote, both streams, every start."""
        parts = []
        for n in range(1, self.starts + 1):
            for stream in ("out", "err"):
                path = self.logdir / f"collector{n}.{stream}"
                if path.exists():
                    parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)


def inbox(redis_url: str, prefix: str) -> list[dict[str, Any]]:
    """The inbox entries as dicts: ``event`` parsed, ``source``/``source_kind`` as text."""
    client = redis.Redis.from_url(redis_url)
    out = []
    for _id, fields in client.xrange(Keys(prefix).inbox):
        entry = {k.decode(): v.decode() for k, v in fields.items()}
        entry["event"] = json.loads(entry["event"])
        out.append(entry)
    return out


def inbox_raw(redis_url: str, prefix: str) -> bytes:
    """Every byte the inbox holds, for searching it for what must never be stored."""
    client = redis.Redis.from_url(redis_url)
    return repr(client.xrange(Keys(prefix).inbox)).encode()


class RawRequest:
    """One HTTP/1.1 request over a plain socket, sent in parts at the test's pace."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send(self, data: bytes) -> bool:
        """Send ``data``; False once the server has stopped reading (it already answered)."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def send_chunk(self, data: bytes) -> bool:
        """One chunk of a ``Transfer-Encoding: chunked`` body (empty ``data`` ends it)."""
        return self.send(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and body of the answer."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before an answer: {data!r}")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            body += chunk
        self.sock.close()
        return int(status_line.split()[1]), headers, body


def _state(pid: int) -> str | None:
    """A process's state letter from /proc (R, S, Z...), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]
