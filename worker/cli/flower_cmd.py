"""``cio-relay flower``: Flower for the relay's workers, with basic auth from settings.

Credentials reach Flower through its ``FLOWER_BASIC_AUTH`` environment variable, never
the command line (which ``ps`` shows to every user of the machine).
"""

from __future__ import annotations

import argparse
import os
import sys

from worker.cli.output import fail
from worker.settings import Settings, get_settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The Tasks page's columns: a drain's result (its outcome counts, or idle) next to its
# name and times; args and kwargs are always empty for relay.drain.
TASKS_COLUMNS = "name,uuid,state,result,received,started,runtime,worker"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "flower", help="run Flower (basic auth required when it listens beyond loopback)"
    )
    p.set_defaults(func=run)


def flower_command(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment that start Flower for these settings."""
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.app",
        "flower",
        f"--address={settings.flower_address}",
        f"--port={settings.flower_port}",
        f"--max_tasks={settings.flower_max_tasks}",
        f"--tasks_columns={TASKS_COLUMNS}",
    ]
    env: dict[str, str] = {}
    if settings.flower_user and settings.flower_password:
        env["FLOWER_BASIC_AUTH"] = (
            f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
        )
    return argv, env


def needs_auth(settings: Settings) -> bool:
    """Flower must have credentials when it listens on anything but loopback."""
    return settings.flower_address not in LOOPBACK and not (
        settings.flower_user and settings.flower_password
    )


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if needs_auth(settings):
        return fail(
            f"Flower would listen on {settings.flower_address or 'all addresses'} without "
            "credentials: set CIO_FLOWER_USER and CIO_FLOWER_PASSWORD"
        )
    argv, env = flower_command(settings)
    os.execve(argv[0], argv, {**os.environ, **env})
    return 0  # not reached
