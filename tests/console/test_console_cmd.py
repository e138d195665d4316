"""``cio-relay console`` and ``console add-user`` as real processes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.console.conftest import ROOT, cli_argv
from tests.integration.conftest import free_port
from worker.console import auth


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli_argv(), *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIO_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_add_user_writes_an_argon2_hash_and_never_echoes_the_password(tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    env = clean_env(CIO_CONSOLE_USERS_FILE=str(users))
    done = run(
        ["console", "add-user", "ann", "--role", "editor", "--password-stdin"],
        env,
        "correct horse battery\n",
    )
    assert done.returncode == 0, done.stderr
    assert "correct horse battery" not in done.stdout + done.stderr
    assert "added editor ann" in done.stdout
    assert auth.verify(auth.read_users(users), "ann", "correct horse battery")
    assert "correct horse battery" not in users.read_text()
    bad = run(
        ["console", "add-user", "bad name", "--role", "viewer", "--password-stdin"], env, "x\n"
    )
    assert bad.returncode == 1 and "user names are" in bad.stderr


def test_add_user_needs_a_file(tmp_path: Path) -> None:
    done = run(
        ["console", "add-user", "ann", "--role", "viewer", "--password-stdin"], clean_env(), "pw\n"
    )
    assert done.returncode == 1 and "CIO_CONSOLE_USERS_FILE" in done.stderr


def test_refuses_to_listen_beyond_loopback_without_users(tmp_path: Path) -> None:
    env = clean_env(CIO_CONSOLE_USERS_FILE=str(tmp_path / "none.toml"))
    done = run(["console", "--host", "0.0.0.0", "--port", str(free_port())], env)
    assert done.returncode == 1
    assert "refusing to listen on 0.0.0.0: no console users" in done.stderr
