"""``cio-relay metrics``: a Prometheus endpoint over the counters every replica shares."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from types import FrameType

import redis
from prometheus_client import start_http_server

from worker.cli.common import context
from worker.metrics import registry


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "metrics", help="serve Prometheus metrics at /metrics (read from Redis on each scrape)"
    )
    p.add_argument("--host", help="address to listen on (default CIO_METRICS_ADDRESS, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default CIO_METRICS_PORT, 9808)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = context()
    host = args.host or ctx.settings.metrics_address
    port = args.port or ctx.settings.metrics_port
    # Fail now, with a clear message, if Redis is unreachable; one that answers but refuses
    # (MISCONF refuses even PING) is what the endpoint is there to report.
    with contextlib.suppress(redis.ResponseError):
        ctx.redis.ping()

    server, thread = start_http_server(port, addr=host, registry=registry(ctx.redis, ctx.keys))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.stderr.write(f"cio-relay: serving metrics on http://{host}:{port}/metrics\n")
    sys.stderr.flush()
    stop.wait()
    server.shutdown()
    thread.join(5)
    return 0
