"""Entry point of ``cio-relay``: parses the subcommand and runs it with clear errors."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import redis

from worker.cli.output import fail
from worker.errors import ConfigError

# Each module has ``add_parser(subparsers)``; the parser it adds sets ``func(args) -> int``.
COMMAND_MODULES = (
    "worker.cli.enqueue_cmd",
    "worker.workflow.commands",
    "worker.cli.dlq_cmd",
    "worker.cli.activity_cmd",
    "worker.cli.stats_cmd",
    "worker.cli.control_cmd",
    "worker.emulator.commands",
    "worker.cli.flower_cmd",
    "worker.cli.metrics_cmd",
    "worker.cli.collect_cmd",
    "worker.cli.run_cmd",
    "worker.cli.console_cmd",
    "worker.cli.audit_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cio-relay",
        description="Relay first-party events from Redis to the Customer.io Track API.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        return fail(str(exc))
    except redis.exceptions.ConnectionError as exc:
        return fail(f"cannot reach Redis ({exc}); check CIO_REDIS_URL (or CIO_REDIS_SENTINELS)")
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
