"""``cio-relay run`` (what ``make run`` calls): the whole stack on this machine.

Redis from ``CIO_REDIS_URL`` if reachable, else a local ``redis-server`` if installed,
else an in-process fakeredis server; the emulator when no real credentials are set;
then a Celery worker, beat, Flower and the metrics endpoint. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

from worker.cli.console_cmd import console_may_listen
from worker.cli.flower_cmd import flower_command, needs_auth
from worker.cli.output import fail
from worker.redisconn import connect, local_server_argv
from worker.settings import Settings, load_settings
from worker.sizing import default_concurrency

RUN_DIR = Path(".run")
EMULATOR_PORT = 8025
SAMPLE_SOURCES = "config/sources.toml"
DEFAULT_CONCURRENCY = default_concurrency()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="run Redis (if needed), emulator, worker, beat, Flower, metrics"
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"worker processes (default {DEFAULT_CONCURRENCY}: three per core, as each waits "
        "on HTTP for more than half of a batch)",
    )
    p.add_argument("--no-flower", action="store_true", help="do not start Flower")
    p.add_argument("--no-metrics", action="store_true", help="do not start the Prometheus endpoint")
    p.add_argument("--no-collector", action="store_true", help="do not start the HTTP collector")
    p.add_argument("--no-console", action="store_true", help="do not start the web console")
    p.set_defaults(func=run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def wait_for(check: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.2)
    return False


class Stack:
    """The child processes ``run`` started, stopped one by one in reverse order.

    Each child runs in its own session, so Ctrl-C reaches ``run`` alone: otherwise the
    terminal's SIGINT stops Redis while the workers are still settling their batches.
    """

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.fake_server: object | None = None

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, env=env, start_new_session=True)
        self.children.append((name, proc))
        return proc

    def stop(self) -> None:
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.fake_server is not None:
            self.fake_server.shutdown()  # type: ignore[attr-defined]


def start_redis(settings: Settings, stack: Stack) -> str:
    """A Redis URL that answers, starting one if needed (never with Sentinels: then the
    primary they name is the Redis, and every child finds it through them)."""
    if settings.sentinel_addresses:
        connect(settings).ping()  # fail now, with a clear message, if none answers
        print(f"redis      primary {settings.redis_master_name!r} via Sentinels")
        return settings.redis_url
    if reachable(settings.redis_url):
        print(f"redis      {settings.redis_url} (already running)")
        return settings.redis_url
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    binary = shutil.which("redis-server")
    if binary:
        data = RUN_DIR / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = local_server_argv(binary, port, data.resolve())
        stack.start("redis", argv, dict(os.environ))
        kind = "local redis-server"
    else:
        from fakeredis import TcpFakeServer

        server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
        import threading

        threading.Thread(target=server.serve_forever, daemon=True).start()
        stack.fake_server = server
        kind = "in-process fakeredis (nothing persists; install redis-server for real use)"
    if not wait_for(lambda: reachable(url)):
        raise RuntimeError(f"Redis did not start on {url}")
    print(f"redis      {url} ({kind})")
    return url


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    RUN_DIR.mkdir(exist_ok=True)
    stack = Stack()
    env = dict(os.environ)
    env.setdefault("CIO_LOG_FORMAT", "console")
    # SIGTERM stops the stack like Ctrl-C, and so does SIGINT even where it was ignored at
    # start (a shell's background job), so a supervisor's `kill -INT` is obeyed.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        env["CIO_REDIS_URL"] = start_redis(settings, stack)
        if not (settings.site_id and settings.api_key):
            env.update(
                CIO_SITE_ID="dev-site",
                CIO_API_KEY="dev-key",
                CIO_TRACK_URL=f"http://127.0.0.1:{EMULATOR_PORT}",
            )
            stack.start(
                "emulator",
                [sys.executable, "-m", "worker.emulator", "--port", str(EMULATOR_PORT)],
                env,
            )
            print(f"emulator   http://127.0.0.1:{EMULATOR_PORT} (no CIO_SITE_ID/CIO_API_KEY set)")
        else:
            print(f"customer.io {settings.base_url} (site {settings.site_id})")
        if settings.workflow_file is None and Path("config/workflow.toml").exists():
            env["CIO_WORKFLOW_FILE"] = "config/workflow.toml"
        celery = [sys.executable, "-m", "celery", "-A", "worker.app"]
        stack.start(
            "worker",
            [
                *celery,
                "worker",
                "--loglevel=INFO",
                f"--concurrency={args.concurrency}",
                "-n",
                "relay@%h",
                "-E",
            ],
            env,
        )
        stack.start(
            "beat",
            [*celery, "beat", "--loglevel=INFO", "-s", str(RUN_DIR / "celerybeat-schedule")],
            env,
        )
        if not args.no_flower:
            child_settings = settings.model_copy(update={"redis_url": env["CIO_REDIS_URL"]})
            if needs_auth(child_settings):
                return fail("set CIO_FLOWER_USER and CIO_FLOWER_PASSWORD to expose Flower")
            argv, extra = flower_command(child_settings)
            stack.start("flower", argv, {**env, **extra})
        if not args.no_metrics:
            stack.start("metrics", [sys.executable, "-m", "worker.cli.main", "metrics"], env)
        if not args.no_collector:
            if settings.sources_file is None and Path(SAMPLE_SOURCES).exists():
                env["CIO_SOURCES_FILE"] = SAMPLE_SOURCES
            stack.start("collector", [sys.executable, "-m", "worker.cli.main", "collect"], env)
        if not args.no_console:
            if not console_may_listen(settings):
                return fail("add a console user (cio-relay console add-user) or use --no-console")
            stack.start("console", [sys.executable, "-m", "worker.cli.main", "console"], env)
        _print_help(settings, env)
        while all(proc.poll() is None for _, proc in stack.children):
            time.sleep(0.5)
        dead = [name for name, proc in stack.children if proc.poll() is not None]
        return fail(f"{', '.join(dead)} stopped; shutting the stack down")
    except KeyboardInterrupt:
        print("\nstopping…")
        return 0
    finally:
        stack.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _print_help(settings: Settings, env: dict[str, str]) -> None:
    redis_env = f"CIO_REDIS_URL={env['CIO_REDIS_URL']}"
    collector = f"http://{settings.collect_address}:{settings.collect_port}"
    users = settings.console_users_file or "none yet: cio-relay console add-user NAME --role editor"
    print(
        f"""
cio-relay is running. In another terminal:
  flower     http://{settings.flower_address}:{settings.flower_port}
  metrics    http://{settings.metrics_address}:{settings.metrics_port}/metrics
  collector  {collector} (sources: {env.get("CIO_SOURCES_FILE", "none")})
             curl -u shop-backend-dev-key: {collector}/v1/track \\
               -d '{{"userId": "u-1", "event": "Purchased",
                    "context": {{"traits": {{"email": "ada@example.com"}}}}}}'
  console    http://{settings.console_address}:{settings.console_port} (users: {users})
  enqueue    {redis_env} .venv/bin/cio-relay enqueue config/samples/customerlabs.jsonl
             {redis_env} .venv/bin/cio-relay enqueue config/samples/segment.jsonl
  activity   {redis_env} .venv/bin/cio-relay activity --follow
  stats      {redis_env} .venv/bin/cio-relay stats
  dlq        {redis_env} .venv/bin/cio-relay dlq list
  workflow   {redis_env} .venv/bin/cio-relay workflow show"""
        + (
            f"\n  emulator   curl -s http://127.0.0.1:{EMULATOR_PORT}/_emulator/events"
            if "CIO_TRACK_URL" in env and env["CIO_TRACK_URL"].endswith(str(EMULATOR_PORT))
            else ""
        )
        + "\nCtrl-C stops everything.\n",
        flush=True,
    )
