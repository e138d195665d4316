"""docker-compose.yml, Procfile and Makefile name commands that exist."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from worker.cli.main import build_parser
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _cli_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def _check(argv: list[str]) -> None:
    if argv[0] == "cio-relay":
        assert argv[1] in _cli_commands(), argv
    elif argv[0] == "celery":
        assert argv[1:3] == ["-A", "worker.app"] and argv[3] in {"worker", "beat", "flower"}
    else:
        assert argv[0] == "redis-server", argv


def test_compose_services_run_real_commands() -> None:
    """Every compose service's command is a celery, cio-relay or redis-server command."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "redis",
        "worker",
        "beat",
        "flower",
        "metrics",
        "collector",
        "console",
        "emulator",
    } <= set(services)
    for svc in services.values():
        _check(svc["command"])


def test_compose_workers_scale() -> None:
    """Workers have no fixed container name or host port, so --scale worker=N works."""
    worker = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_procfile_runs_real_commands() -> None:
    """Each Procfile line is worker, beat, flower, metrics, collect or console and runs a real
    command."""
    lines = [ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.strip()]
    names = {ln.split(":", 1)[0] for ln in lines}
    assert names == {"worker", "beat", "flower", "metrics", "collect", "console"}
    for ln in lines:
        argv = ln.split(":", 1)[1].split()
        while "=" in argv[0]:  # leading VAR=value assignments
            argv = argv[1:]
        _check(argv)


def test_metrics_port_is_published_on_loopback_only() -> None:
    """The metrics endpoint has no auth: compose publishes it on the host's loopback."""
    metrics = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["metrics"]
    assert metrics["ports"] == ["127.0.0.1:9808:9808"]


def test_ci_runs_make_test() -> None:
    """CI calls the same test command the README gives."""
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_env_example_lists_every_setting_with_its_default() -> None:
    """``config/.env.example`` names every CIO_* setting, with the default the code has."""
    text = (ROOT / "config" / ".env.example").read_text()
    listed = dict(re.findall(r"^#? ?(CIO_[A-Z0-9_]+)=(.*)$", text, re.M))
    for name, info in Settings.model_fields.items():
        key = f"CIO_{name.upper()}"
        assert key in listed, f"{key} is missing from config/.env.example"
        default = info.default
        if default is None or hasattr(default, "get_secret_value"):
            continue
        assert listed[key] == str(default).removesuffix(".0"), key


def test_procfile_worker_takes_worker_concurrency_else_the_configured_default() -> None:
    """Expanded by sh as honcho and Heroku do: WORKER_CONCURRENCY when set, else no flag,
    so Celery takes worker_concurrency from the app (three per core)."""
    worker = next(
        ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("worker:")
    )
    [flag] = [arg for arg in worker.split() if "CONCURRENCY" in arg]
    env = {k: v for k, v in os.environ.items() if k != "WORKER_CONCURRENCY"}

    def expanded(extra: dict[str, str]) -> str:
        out = subprocess.run(
            ["sh", "-c", f"echo {flag}"], env={**env, **extra}, capture_output=True, text=True
        )
        return out.stdout.strip()

    assert expanded({}) == ""
    assert expanded({"WORKER_CONCURRENCY": "5"}) == "--concurrency=5"
