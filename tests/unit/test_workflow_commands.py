"""``cio-relay workflow show|apply|enable|disable|export`` end to end on a fake Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest

from worker import redisconn
from worker.cli import main as cli_main
from worker.keys import Keys
from worker.settings import get_settings
from worker.workflow.loader import parse_workflow
from worker.workflow.model import EventRule, Workflow
from worker.workflow.store import WorkflowStore

PREFIX = "clitest"
GOOD = """\
default = "on"

[events."Added to cart"]
callback = "worker.workflow.example_callbacks:add_margin"

[[events."Added to cart".trigger_paths]]
pattern = "/checkout/*"
match = "glob"
action = "dont_fire"

[[events."Added to cart".trigger_paths]]
pattern = "/cart"
match = "exact"
action = "fire"

[events."Page viewed"]
enabled = false
"""


@pytest.fixture
def redis_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[fakeredis.FakeRedis]:
    """The fake Redis every command connects to, under the prefix ``clitest``."""
    client = fakeredis.FakeRedis()
    monkeypatch.setenv("CIO_REDIS_PREFIX", PREFIX)
    monkeypatch.setattr(redisconn, "connect", lambda settings: client)
    # Only this command module: the others are not under test here.
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("worker.workflow.commands",))
    get_settings.cache_clear()
    yield client
    get_settings.cache_clear()


@pytest.fixture
def store(redis_client: fakeredis.FakeRedis) -> WorkflowStore:
    """The live workflow the commands change."""
    return WorkflowStore(redis_client, Keys(PREFIX))


def run(*argv: str) -> int:
    """Run ``cio-relay`` with the given arguments."""
    return cli_main.main(list(argv))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workflow.toml"
    path.write_text(text)
    return path


def test_apply_replaces_the_live_workflow(
    store: WorkflowStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """apply FILE makes the file the live workflow and says so."""
    assert run("workflow", "apply", str(write(tmp_path, GOOD))) == 0
    assert store.get() == parse_workflow(GOOD)
    assert "applied" in capsys.readouterr().out


def test_apply_json_reports_the_version(
    store: WorkflowStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """apply --json prints one JSON object with the new version."""
    run("workflow", "apply", "--json", str(write(tmp_path, GOOD)))
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == 1
    assert report["events"] == 2
    assert report["applied"] is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('default = "on"\n[events."A"]\nenabled = "no"\n', ':3: event "A": enabled must be'),
        ('default = "on"\n[events."A"\n', ":2: TOML syntax error"),
        (
            '\n[events."A"]\ncallback = "cio_missing_module_xyz:f"\n',
            ":3: callback cio_missing_module_xyz:f cannot be imported",
        ),
        (
            '[events."A"]\ncallback = "worker.workflow.example_callbacks:nope"\n',
            ":2: callback worker.workflow.example_callbacks:nope: module",
        ),
    ],
    ids=["type", "syntax", "import", "attribute"],
)
def test_apply_refuses_a_bad_file_and_keeps_the_live_one(
    store: WorkflowStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    expected: str,
) -> None:
    """A bad file exits non-zero with FILE:LINE: reason and changes nothing."""
    store.replace(Workflow(default="off", events={"Kept": EventRule()}))
    path = write(tmp_path, text)
    assert run("workflow", "apply", str(path)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"cio-relay: {path}{expected}")
    assert store.get().events == {"Kept": EventRule()}
    assert store.version() == 1


def test_apply_reports_a_missing_file(
    store: WorkflowStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that does not exist is reported without a line number."""
    path = tmp_path / "nope.toml"
    assert run("workflow", "apply", str(path)) == 1
    assert capsys.readouterr().err.startswith(f"cio-relay: {path}: cannot read")


def test_apply_check_changes_nothing(
    store: WorkflowStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """apply --check validates the file without storing it."""
    assert run("workflow", "apply", "--check", str(write(tmp_path, GOOD))) == 0
    assert store.version() == 0
    assert ": ok" in capsys.readouterr().out


@pytest.mark.parametrize(("command", "enabled"), [("enable", True), ("disable", False)])
def test_toggle_flips_one_event(
    store: WorkflowStore, command: str, enabled: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """enable/disable NAME changes only that event's toggle."""
    store.replace(parse_workflow(GOOD))
    assert run("workflow", command, "--json", "Added to cart") == 0
    assert store.get().events["Added to cart"].enabled is enabled
    assert store.get().events["Page viewed"].enabled is False
    report = json.loads(capsys.readouterr().out)
    assert report == {"name": "Added to cart", "enabled": enabled, "added": False, "version": 2}


def test_enable_an_unlisted_event_adds_it(
    store: WorkflowStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """Enabling an event that is not listed adds it and says so."""
    assert run("workflow", "enable", "Trial started") == 0
    assert store.get().events["Trial started"] == EventRule()
    assert "was not listed" in capsys.readouterr().out


def test_show_table(store: WorkflowStore, capsys: pytest.CaptureFixture[str]) -> None:
    """show prints the default, the page view event and one row per event."""
    store.replace(parse_workflow(GOOD))
    assert run("workflow", "show") == 0
    out = capsys.readouterr().out
    assert "default: on" in out
    assert "page view event: Page viewed" in out
    row = next(line for line in out.splitlines() if line.startswith("Added to cart"))
    assert row.split()[3:] == [
        "True",
        "any",
        "worker.workflow.example_callbacks:add_margin",
        "False",
        "1",
        "1",
        "-",
    ]


def test_show_json(store: WorkflowStore, capsys: pytest.CaptureFixture[str]) -> None:
    """show --json prints a header object, then one object per event."""
    store.replace(parse_workflow(GOOD))
    run("workflow", "show", "--json")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["default"] == "on"
    assert lines[0]["version"] == 1
    assert [line["name"] for line in lines[1:]] == ["Added to cart", "Page viewed"]
    assert lines[1]["fire"] == 1
    assert lines[1]["dont_fire"] == 1
    assert lines[1]["trigger_paths"][1] == {"pattern": "/cart", "match": "exact", "action": "fire"}


SOURCES = """\
[events."Added to cart"]
collect = "client"

[[events."Added to cart".client]]
on = "click"
selector = "button.add-to-cart"

[[events."Added to cart".client]]
on = "submit"
selector = "form#cart"

[events.Purchased]
collect = "server"
"""


def test_show_table_has_collect_and_client(
    store: WorkflowStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table shows each event's collect mode and its client definitions as on:selector."""
    store.replace(parse_workflow(SOURCES))
    assert run("workflow", "show") == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("NAME"))
    assert header.split() == [
        "NAME",
        "ENABLED",
        "COLLECT",
        "CALLBACK",
        "REQUIRE_URL",
        "FIRE",
        "DONT_FIRE",
        "CLIENT",
    ]
    cart = next(line for line in lines if line.startswith("Added to cart"))
    assert cart.split()[3:] == [
        "True",
        "client",
        "-",
        "False",
        "0",
        "0",
        "click:button.add-to-cart,",
        "submit:form#cart",
    ]
    purchased = next(line for line in lines if line.startswith("Purchased"))
    assert purchased.split()[1:3] == ["True", "server"]
    assert purchased.rstrip().endswith("-")


def test_show_json_has_collect_and_client(
    store: WorkflowStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """show --json carries collect and the client definitions as objects."""
    store.replace(parse_workflow(SOURCES))
    run("workflow", "show", "--json")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    cart, purchased = lines[1:]
    assert cart["collect"] == "client"
    assert cart["client"] == [
        {"on": "click", "selector": "button.add-to-cart"},
        {"on": "submit", "selector": "form#cart"},
    ]
    assert (purchased["collect"], purchased["client"]) == ("server", [])


def test_apply_then_export_keeps_collect_and_client(
    store: WorkflowStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file with collect and client tables applies, and export writes them back."""
    assert run("workflow", "apply", str(write(tmp_path, SOURCES))) == 0
    capsys.readouterr()
    assert run("workflow", "export") == 0
    exported = capsys.readouterr().out
    assert 'collect = "client"' in exported
    assert parse_workflow(exported) == parse_workflow(SOURCES)


def test_apply_refuses_an_unknown_collect_with_its_line(
    store: WorkflowStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """apply names the file and line of a collect value it does not know."""
    path = write(tmp_path, '[events."A"]\nenabled = true\ncollect = "browser"\n')
    assert run("workflow", "apply", str(path)) == 1
    assert capsys.readouterr().err.startswith(
        f'cio-relay: {path}:3: event "A": collect must be one of any, server, client'
    )
    assert store.version() == 0


def test_show_with_nothing_stored(store: WorkflowStore, capsys: pytest.CaptureFixture[str]) -> None:
    """show on an empty Redis says no workflow is stored and every event is off."""
    assert run("workflow", "show") == 0
    out = capsys.readouterr().out
    assert "no workflow stored yet" in out
    assert "default: off" in out


def test_export_prints_toml_that_applies_back(
    store: WorkflowStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export prints the live workflow as TOML that parses to the same workflow."""
    store.replace(parse_workflow(GOOD))
    assert run("workflow", "export") == 0
    assert parse_workflow(capsys.readouterr().out) == parse_workflow(GOOD)


def test_export_to_a_file(store: WorkflowStore, tmp_path: Path) -> None:
    """export FILE writes the TOML there."""
    store.replace(parse_workflow(GOOD))
    target = tmp_path / "out.toml"
    assert run("workflow", "export", str(target)) == 0
    assert parse_workflow(target.read_text()) == parse_workflow(GOOD)


def test_unreadable_live_workflow_is_one_clear_line(
    redis_client: fakeredis.FakeRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken stored workflow makes show fail with a hint instead of a traceback."""
    redis_client.hset(Keys(PREFIX).workflow, "workflow", b"{")
    assert run("workflow", "show") == 1
    assert "workflow apply FILE" in capsys.readouterr().err


def test_show_has_consent_and_object_type(
    store: WorkflowStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """show names the [consent] in force; --json carries it and the per-event keys."""
    store.replace(
        parse_workflow(
            '[consent]\nrequired = ["ads", "analytics"]\nmissing = "deny"\n'
            '[events."Create group"]\nobject_type_id = "2"\nconsent = []\n'
        )
    )
    run("workflow", "show")
    assert "consent required: ads, analytics (missing: deny)" in capsys.readouterr().out
    run("workflow", "show", "--json")
    header, row = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert header["consent"] == {"required": ["ads", "analytics"], "missing": "deny"}
    assert (row["object_type_id"], row["consent"]) == ("2", [])
