"""``cio-relay console``: the web console under uvicorn (one process); ``cio-relay console
add-user``: add or replace a console user in CIO_CONSOLE_USERS_FILE with an Argon2 hash."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import signal
import sys
from pathlib import Path

import uvicorn

from worker.cli.output import fail
from worker.console.auth import ROLES, add_user, read_users
from worker.logging import configure_logging
from worker.settings import Settings, load_settings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "console", help="serve the web console (workflow editor, history, audit, ...)"
    )
    p.add_argument("--host", help="address to listen on (default CIO_CONSOLE_ADDRESS, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default CIO_CONSOLE_PORT, 8089)")
    p.set_defaults(func=run)
    actions = p.add_subparsers(dest="console_command", metavar="ACTION")
    add = actions.add_parser("add-user", help="add or replace a console user")
    add.add_argument("name", metavar="NAME", help="user name (letters, digits, _ . @ -)")
    add.add_argument("--role", choices=ROLES, required=True, help="viewer or editor")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else it is asked for, not echoed)",
    )
    add.add_argument("--file", type=Path, help="users file (default CIO_CONSOLE_USERS_FILE)")
    add.set_defaults(func=cmd_add_user)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def console_may_listen(settings: Settings, host: str | None = None) -> bool:
    """Whether the console may listen on ``host``: on loopback always, beyond it only
    once the users file holds a user."""
    host = host or settings.console_address
    return is_loopback(host) or bool(read_users(settings.console_users_file))


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    host = args.host or settings.console_address
    port = args.port or settings.console_port
    users = read_users(settings.console_users_file)
    if not console_may_listen(settings, host):
        return fail(
            f"refusing to listen on {host}: no console users. Add one with "
            "cio-relay console add-user NAME --role editor --password-stdin "
            "(CIO_CONSOLE_USERS_FILE names the file)"
        )
    if not users:
        sys.stderr.write(
            "cio-relay: no console users yet: add one with "
            "cio-relay console add-user NAME --role editor --password-stdin\n"
        )
    sys.stderr.write(f"cio-relay: console on http://{host}:{port}\n")
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        "worker.console.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=1,
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0


def cmd_add_user(args: argparse.Namespace) -> int:
    path = args.file or load_settings().console_users_file
    if path is None:
        return fail("set CIO_CONSOLE_USERS_FILE (or pass --file) to say where users are kept")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            return fail("the passwords differ")
    new = add_user(Path(path), args.name, args.role, password)
    print(f"{'added' if new else 'updated'} {args.role} {args.name} in {path}")
    return 0
