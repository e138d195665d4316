"""``cio-relay emulator`` and ``python -m worker.emulator``: options, faults, start and stop."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from worker.emulator.commands import add_parser, configure_parser, faults_from_args, run

ROOT = Path(__file__).resolve().parents[2]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(argv)


def test_add_parser_registers_emulator() -> None:
    """``add_parser`` adds an ``emulator`` command whose defaults bind loopback:8025."""
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["emulator"])
    assert (args.func, args.host, args.port, args.control_port) == (run, "127.0.0.1", 8025, None)


def test_site_id_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The site id comes from CIO_SITE_ID when set."""
    monkeypatch.setenv("CIO_SITE_ID", "site-from-env")
    assert _parse().site_id == "site-from-env"


def test_no_fault_flags_means_no_faults() -> None:
    """Without fault flags the configuration injects nothing."""
    assert faults_from_args(_parse()).to_dict() == faults_from_args(_parse()).__class__().to_dict()


@pytest.mark.parametrize(
    ("argv", "field", "expected"),
    [
        (["--rate-limit-rps", "10"], "rate_limit_rps", 10.0),
        (["--retry-after", "5"], "retry_after_s", 5),
        (["--retry-after", "http-date:9"], "retry_after_format", "http-date"),
        (
            ["--error-rate", "503=0.2", "--error-rate", "500=0.1"],
            "error_rates",
            {500: 0.1, 503: 0.2},
        ),
        (["--latency-ms", "40", "--latency-jitter-ms", "10"], "latency_jitter_ms", 10.0),
        (["--seed", "3"], "seed", 3),
        (["--outage", "503", "--outage-s", "30"], "outage_s", 30.0),
        (["--unauthorized"], "unauthorized", True),
        (["--poison", "BAD"], "poison", "BAD"),
    ],
)
def test_fault_flags_set_the_configuration(argv: list[str], field: str, expected: object) -> None:
    """Each fault flag sets its setting."""
    assert getattr(faults_from_args(_parse(*argv)), field) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--error-rate", "503"],
        ["--error-rate", "503=1.5"],
        ["--retry-after", "soon"],
        ["--outage", "refuse"],
    ],
)
def test_bad_fault_flags_fail_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An impossible fault setting exits 1 with one line on stderr, before listening."""
    assert run(_parse("--port", "0", *argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith("cio-relay: emulator:") and err.count("\n") == 1


def test_module_serves_until_sigterm() -> None:
    """``python -m worker.emulator`` prints where it listens, serves, and exits 0 on SIGTERM."""
    env = {**os.environ, "CIO_API_KEY": "key-from-env", "PYTHONPATH": str(ROOT)}
    env.pop("CIO_SITE_ID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker.emulator", "--port", "0", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        where = json.loads(proc.stdout.readline())
        response = requests.get(
            where["url"] + "/api/v1/accounts/region", auth=("dev-site", "key-from-env"), timeout=5
        )
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
