"""The Procfile's flower and metrics lines listen on $PORT when the platform (or honcho)
gives one, unless CIO_FLOWER_PORT / CIO_METRICS_PORT name a port explicitly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Stands in for cio-relay: prints the port setting it was started with, then its arguments.
SHOW = (
    f'{sys.executable} -c \'import os, sys; print(os.environ.get("{{var}}", "-"), *sys.argv[1:])\''
)


def run_line(name: str, var: str, extra: dict[str, str]) -> str:
    """The Procfile line ``name`` run by sh, as honcho and Heroku run it."""
    line = next(
        ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith(f"{name}:")
    )
    command = line.split(":", 1)[1].replace("cio-relay", SHOW.format(var=var))
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", var)}
    out = subprocess.run(
        ["sh", "-c", command], env={**env, **extra}, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.mark.parametrize(
    ("extra", "port"),
    [
        ({}, "5555"),
        ({"PORT": "5100"}, "5100"),
        ({"PORT": "5100", "CIO_FLOWER_PORT": "7000"}, "7000"),
        ({"CIO_FLOWER_PORT": "7000"}, "7000"),
    ],
)
def test_flower_takes_port_unless_its_own_setting_is_given(
    extra: dict[str, str], port: str
) -> None:
    assert run_line("flower", "CIO_FLOWER_PORT", extra) == f"{port} flower"


@pytest.mark.parametrize(
    ("extra", "port"),
    [
        ({}, "9808"),
        ({"PORT": "5200"}, "5200"),
        ({"PORT": "5200", "CIO_METRICS_PORT": "9900"}, "9900"),
        ({"CIO_METRICS_PORT": "9900"}, "9900"),
    ],
)
def test_metrics_takes_port_unless_its_own_setting_is_given(
    extra: dict[str, str], port: str
) -> None:
    shown = run_line("metrics", "CIO_METRICS_PORT", extra)
    assert shown.split(" ", 1)[1] == f"metrics --port {port}"
