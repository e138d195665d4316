"""``cio-relay collect``: the HTTP collector under uvicorn, one server process per core.

uvicorn with uvloop and httptools (README "Design notes" has the measurements behind the
choice). SIGTERM or Ctrl-C stops accepting connections, lets the requests in flight be
answered (each only after Redis acknowledged its events), then exits.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys

import uvicorn

from worker.collector.sources import Sources, load_sources
from worker.logging import configure_logging
from worker.settings import load_settings

GRACEFUL_SHUTDOWN_S = 30
GC_THRESHOLD = 50_000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "collect", help="serve the HTTP collector (Segment/RudderStack SDKs, tracker.js)"
    )
    p.add_argument("--host", help="address to listen on (default CIO_COLLECT_ADDRESS, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default CIO_COLLECT_PORT, 8088)")
    p.add_argument(
        "--workers",
        type=int,
        help="server processes (default CIO_COLLECT_WORKERS, else one per core)",
    )
    p.set_defaults(func=run)


def default_workers() -> int:
    """One server process per core this process may run on."""
    return len(os.sched_getaffinity(0))


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    sources = load_sources(settings.sources_file)  # a bad file stops us here, with its reason
    configure_logging(settings.log_level, settings.log_format, server_keys(sources))
    host = args.host or settings.collect_address
    port = args.port or settings.collect_port
    workers = args.workers or settings.collect_workers or default_workers()
    if not len(sources):
        sys.stderr.write(
            "cio-relay: no sources configured (CIO_SOURCES_FILE): every request will get 401\n"
        )
    sys.stderr.write(f"cio-relay: collecting on http://{host}:{port} with {workers} processes\n")
    sys.stderr.flush()
    # uvicorn re-raises the SIGTERM it handled once it has stopped gracefully, which would
    # end a single-process server "killed by SIGTERM"; a no-op handler makes that exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        "worker.cli.collect_cmd:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        timeout_keep_alive=30,
        backlog=2048,
    )
    return 0


def app_factory() -> object:
    """The ASGI app for one server process, its logging set up as the settings say (each
    worker process is spawned afresh and inherits none of the parent's setup)."""
    from worker.collector.app import create_app

    settings = load_settings()
    sources = load_sources(settings.sources_file)
    configure_logging(settings.log_level, settings.log_format, server_keys(sources))
    app = create_app(settings, sources=sources)
    # A request's parsed events are short-lived and hold no cycles, but a batch allocates
    # thousands of objects: at the default threshold (700) the cyclic collector ran every
    # few requests and walked every body in flight. Everything made so far is frozen out
    # of its sight, and it runs after 50,000 allocations instead.
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 50, 100)
    return app


def server_keys(sources: Sources) -> list[str]:
    """The write keys that are secrets, for the log redaction safety net."""
    return [s.write_key for s in sources.sources if s.kind == "server"]
