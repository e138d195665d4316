"""Flower's command line and credentials come from settings, never from argv."""

from __future__ import annotations

from pydantic import SecretStr

from worker.cli.flower_cmd import flower_command, needs_auth
from worker.settings import Settings


def test_loopback_without_credentials_is_allowed() -> None:
    """Flower on loopback may run without credentials."""
    assert not needs_auth(Settings(flower_address="127.0.0.1"))


def test_public_address_without_credentials_is_refused() -> None:
    """Flower beyond loopback needs CIO_FLOWER_USER and CIO_FLOWER_PASSWORD."""
    assert needs_auth(Settings(flower_address="0.0.0.0"))
    assert not needs_auth(
        Settings(flower_address="0.0.0.0", flower_user="ops", flower_password=SecretStr("pw12"))
    )


def test_password_travels_in_the_environment_not_argv() -> None:
    """The password is in FLOWER_BASIC_AUTH and absent from the command line."""
    argv, env = flower_command(
        Settings(flower_user="ops", flower_password=SecretStr("s3cret-pw"), flower_port=5601)
    )
    assert "s3cret-pw" not in " ".join(argv)
    assert env["FLOWER_BASIC_AUTH"] == "ops:s3cret-pw"
    assert "--port=5601" in argv


def test_history_holds_a_day_of_work_and_the_tasks_page_shows_results() -> None:
    """Flower keeps CIO_FLOWER_MAX_TASKS rows (default 50,000) and its Tasks page has a
    result column, where each drain's outcome counts (or idle) appear."""
    argv, _ = flower_command(Settings())
    assert "--max_tasks=50000" in argv
    columns = next(a for a in argv if a.startswith("--tasks_columns=")).split("=", 1)[1]
    assert "result" in columns.split(",")
    assert "--max_tasks=2000" in flower_command(Settings(flower_max_tasks=2000))[0]
