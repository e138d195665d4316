"""``cio-relay emulator``: serve the Customer.io Track API emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from worker.cli.output import emit_json, fail
from worker.emulator.faults import FaultConfig, parse_error_rate, parse_retry_after
from worker.emulator.server import EmulatorServer


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to a parser."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8025, help="Track API port (0: any free)")
    parser.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="also serve the control API on this port (reachable during a refuse outage)",
    )
    parser.add_argument(
        "--site-id",
        default=os.environ.get("CIO_SITE_ID") or "dev-site",
        help="Site ID to accept (default $CIO_SITE_ID, else dev-site)",
    )
    parser.add_argument(
        "--api-key-env",
        default="CIO_API_KEY",
        metavar="NAME",
        help="environment variable holding the API key to accept (default CIO_API_KEY; "
        "unset: dev-key)",
    )
    parser.add_argument("--max-recorded", type=int, default=100_000, help="requests to keep")
    parser.add_argument(
        "--max-recorded-mb",
        type=float,
        default=512,
        help="request bodies to keep, in MB; the oldest requests go first (default 512)",
    )
    parser.add_argument(
        "--lean", action="store_true", help="keep only ids and counts (long benchmarks)"
    )
    parser.add_argument("--json", action="store_true", help="print the start line as JSON")
    faults = parser.add_argument_group("fault injection (all off by default)")
    faults.add_argument("--rate-limit-rps", type=float, help="answer 429 above this rate")
    faults.add_argument(
        "--retry-after",
        default="none",
        metavar="none|N|http-date:N",
        help="Retry-After on 429s: none, N seconds, or an HTTP-date N seconds ahead",
    )
    faults.add_argument(
        "--error-rate",
        action="append",
        default=[],
        metavar="STATUS=RATE",
        help="answer STATUS with probability RATE, e.g. 503=0.2 (repeatable)",
    )
    faults.add_argument("--latency-ms", type=float, default=0.0, help="added latency")
    faults.add_argument("--latency-jitter-ms", type=float, default=0.0, help="± latency jitter")
    faults.add_argument("--seed", type=int, help="seed for error rates and jitter")
    faults.add_argument(
        "--outage", choices=("503", "refuse"), help="start in an outage: answer 503, or refuse"
    )
    faults.add_argument("--outage-s", type=float, help="outage length (default: until cleared)")
    faults.add_argument("--unauthorized", action="store_true", help="answer 401 to everything")
    faults.add_argument("--poison", metavar="MARKER", help="reject requests containing MARKER")


def faults_from_args(args: argparse.Namespace) -> FaultConfig:
    """The fault configuration the options ask for; ValueError on a bad one."""
    retry_after_s, retry_after_format = parse_retry_after(args.retry_after)
    changes: dict[str, Any] = {
        "rate_limit_rps": args.rate_limit_rps,
        "retry_after_s": retry_after_s,
        "retry_after_format": retry_after_format,
        "error_rates": dict(parse_error_rate(text) for text in args.error_rate),
        "latency_ms": args.latency_ms,
        "latency_jitter_ms": args.latency_jitter_ms,
        "seed": args.seed,
        "outage": args.outage or "off",
        "outage_s": args.outage_s,
        "unauthorized": args.unauthorized,
        "poison": args.poison,
    }
    return FaultConfig.from_dict(changes)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; exit 0 after a clean stop."""
    try:
        faults = faults_from_args(args)
        server = EmulatorServer(
            args.host,
            args.port,
            site_id=args.site_id,
            api_key=os.environ.get(args.api_key_env) or "dev-key",
            faults=faults,
            control_port=args.control_port,
            max_recorded=args.max_recorded,
            max_recorded_bytes=int(args.max_recorded_mb * 1024 * 1024),
            lean=args.lean,
        ).start()
    except ValueError as exc:
        return fail(f"emulator: {exc}")
    except OSError as exc:
        return fail(f"emulator: cannot listen on {args.host}:{args.port}: {exc}")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    where = {
        "url": server.url,
        "control_url": f"{server.control_url}/_emulator/",
        "site_id": args.site_id,
    }
    if args.json:
        emit_json(where)
    else:
        sys.stdout.write(
            f"cio-relay emulator: Track API on {where['url']} (site id {args.site_id}), "
            f"control API on {where['control_url']}\n"
        )
        sys.stdout.flush()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``cio-relay emulator``."""
    parser = subparsers.add_parser(
        "emulator",
        help="serve a local Customer.io Track API emulator",
        description="Serve a local Customer.io Track API (v1 and v2) with a control API "
        "under /_emulator/ and optional fault injection.",
    )
    configure_parser(parser)
    parser.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """``python -m worker.emulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m worker.emulator", description="Serve a local Customer.io Track API."
    )
    configure_parser(parser)
    return run(parser.parse_args(argv))
