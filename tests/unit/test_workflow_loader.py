"""Workflow TOML: parsing, validation errors with their line, and export round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.errors import WorkflowError
from worker.workflow.loader import (
    describe_error,
    dump_workflow,
    load_workflow_file,
    parse_workflow,
    workflow_from_dict,
    workflow_to_dict,
)
from worker.workflow.model import EventRule, TriggerPath, Workflow

GOOD = """\
default = "on"
page_view_event = "Page view"

[events."Added to cart"]
enabled = true
callback = "myshop.cio:add_margin"
require_url = true

[[events."Added to cart".trigger_paths]]
pattern = "/checkout/*"
match = "glob"
action = "dont_fire"

[[events."Added to cart".trigger_paths]]
pattern = "https://shop.example.com/"
match = "prefix"
action = "fire"

[events.Off]
enabled = false
"""


def error_of(text: str) -> WorkflowError:
    """The WorkflowError parsing ``text`` raises."""
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text)
    return caught.value


def test_parses_the_documented_format() -> None:
    """Every field of the documented format lands in the model."""
    assert parse_workflow(GOOD) == Workflow(
        default="on",
        page_view_event="Page view",
        events={
            "Added to cart": EventRule(
                enabled=True,
                callback="myshop.cio:add_margin",
                require_url=True,
                trigger_paths=(
                    TriggerPath("/checkout/*", "glob", "dont_fire"),
                    TriggerPath("https://shop.example.com/", "prefix", "fire"),
                ),
            ),
            "Off": EventRule(enabled=False),
        },
    )


def test_empty_file_is_the_default_workflow() -> None:
    """An empty file means default off, "Page viewed", and no events."""
    assert parse_workflow("") == Workflow("off", "Page viewed", {})


def test_event_table_alone_means_enabled() -> None:
    """An [events."X"] table without keys enables X with no rules."""
    assert parse_workflow('[events."X"]\n').events["X"] == EventRule()


def test_inline_tables_are_accepted() -> None:
    """The same workflow written with inline tables parses the same."""
    text = (
        'events."E" = {callback = "a.b:c", trigger_paths = '
        '[{pattern = "/x", match = "exact", action = "fire"}]}\n'
    )
    rule = parse_workflow(text).events["E"]
    assert rule.callback == "a.b:c"
    assert rule.trigger_paths == (TriggerPath("/x", "exact", "fire"),)


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ('default = "off"\nevents = [\n', 2, "TOML syntax error"),
        ('default = "off"\n[events."A"\nenabled = true\n', 2, "TOML syntax error"),
        ('[events."A"]\nenabled = true\nenabled = false\n', 3, "TOML syntax error"),
        ('default = "of"\n', 1, 'default must be "off" or "on", not "of"'),
        ("# c\ndefault = 1\n", 2, "default must be"),
        ('page_view_event = ""\n', 1, "page_view_event must be a non-empty string"),
        ("page_view_event = 3\n", 1, "page_view_event must be a non-empty string"),
        ('defualt = "on"\n', 1, 'unknown key "defualt" in the workflow'),
        ('events = "x"\n', 1, "events must be a table"),
        ("events.X = 1\n", 1, 'event "X" must be a table'),
        ('[events.""]\n', 1, "an event name must not be empty"),
        ('\n[events."A"]\nenable = true\n', 3, 'unknown key "enable" in event "A"'),
        ('[events."A"]\nenabled = "yes"\n', 2, 'event "A": enabled must be true or false'),
        ('[events."A"]\n\nrequire_url = 1\n', 3, "require_url must be true or false"),
        ('[events."A"]\ncallback = "add_margin"\n', 2, "callback must look like"),
        ('[events."A"]\ncallback = "a.b:"\n', 2, "callback must look like"),
        ('[events."A"]\ncallback = "a b:c"\n', 2, "callback must look like"),
        ('[events."A"]\ncallback = true\n', 2, "callback must look like"),
        ('[events."A"]\ntrigger_paths = "x"\n', 2, "trigger_paths must be a list of tables"),
        ('[events."A"]\ntrigger_paths = ["x"]\n', 2, "trigger path 1 must be a table"),
    ],
)
def test_errors_name_the_line(text: str, line: int, needle: str) -> None:
    """Each kind of mistake is refused with its reason and the line it is on."""
    exc = error_of(text)
    assert needle in exc.reason
    assert exc.line == line


RULES = """\
[events."A"]
enabled = true

[[events."A".trigger_paths]]
pattern = "/ok"
match = "exact"
action = "fire"

[[events."A".trigger_paths]]
{body}
"""


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ('pattern = "/x"\nmatch = "globb"\naction = "fire"', 11, "match must be one of"),
        ('pattern = "/x"\nmatch = "glob"\naction = "block"', 12, "action must be one of"),
        ('pattern = "(/x"\nmatch = "regex"\naction = "fire"', 10, 'invalid regex "(/x"'),
        ('pattern = ""\nmatch = "exact"\naction = "fire"', 10, "pattern must be a non-empty"),
        ('pattern = 5\nmatch = "exact"\naction = "fire"', 10, "pattern must be a non-empty"),
        ('pattern = "/x"\naction = "fire"', 9, "match is missing"),
        ('pattern = "/x"\nmatch = "exact"\naction = "fire"\nmach = "x"', 13, 'unknown key "mach"'),
    ],
)
def test_trigger_path_errors_name_the_rule_and_line(body: str, line: int, needle: str) -> None:
    """A bad trigger path is reported as the event's n-th rule on the offending line."""
    exc = error_of(RULES.format(body=body))
    assert needle in exc.reason
    assert 'event "A", trigger path 2' in exc.reason
    assert exc.line == line


def test_syntax_error_at_end_of_document_points_at_last_line() -> None:
    """tomllib's "at end of document" becomes the file's last line."""
    exc = error_of('default = "off"\n\npage_view_event = \n')
    assert exc.line == 3


def test_first_problem_is_reported() -> None:
    """With several mistakes, the first in file order is the one reported."""
    exc = error_of('default = "x"\n[events."A"]\nenabled = 2\n')
    assert exc.line == 1


def test_error_message_carries_the_line() -> None:
    """str(WorkflowError) starts with the line so any printer shows it."""
    assert str(error_of('default = "x"\n')).startswith("line 1: ")


def test_load_file_reports_a_missing_file(tmp_path: Path) -> None:
    """A file that cannot be read is a WorkflowError without a line."""
    with pytest.raises(WorkflowError, match="cannot read the workflow file") as caught:
        load_workflow_file(tmp_path / "missing.toml")
    assert caught.value.line is None


def test_load_file_reports_non_utf8_with_its_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are refused with the line they are on."""
    path = tmp_path / "w.toml"
    path.write_bytes(b'default = "off"\npage_view_event = "caf\xe9"\n')
    with pytest.raises(WorkflowError, match="not UTF-8") as caught:
        load_workflow_file(path)
    assert caught.value.line == 2


def test_load_file_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    """A UTF-8 byte order mark, as some editors write, is ignored."""
    path = tmp_path / "w.toml"
    path.write_bytes(b'\xef\xbb\xbfdefault = "on"\n')
    assert load_workflow_file(path).default == "on"


def test_export_round_trips_the_example() -> None:
    """dump_workflow writes TOML that parses back to an equal workflow."""
    workflow = parse_workflow(GOOD)
    assert parse_workflow(dump_workflow(workflow)) == workflow


def test_export_keeps_event_order() -> None:
    """Events are written in the order the workflow lists them."""
    text = dump_workflow(parse_workflow('[events."B"]\n[events."A"]\n'))
    assert text.index('[events."B"]') < text.index('[events."A"]')


def test_dict_form_round_trips() -> None:
    """The plain-data form (used for storage) rebuilds an equal workflow."""
    workflow = parse_workflow(GOOD)
    assert workflow_from_dict(workflow_to_dict(workflow)) == workflow


NAMES = st.text(min_size=1).filter(lambda s: s.strip() != "")


@given(
    name=NAMES,
    page_view=NAMES,
    pattern=st.text(min_size=1),
    match=st.sampled_from(["exact", "prefix", "contains", "glob"]),
)
def test_export_round_trips_any_text(name: str, page_view: str, pattern: str, match: str) -> None:
    """Quotes, backslashes, control characters and non-ASCII survive export and parse."""
    workflow = Workflow(
        "on",
        page_view,
        {name: EventRule(trigger_paths=(TriggerPath(pattern, match, "fire"),))},  # type: ignore[arg-type]
    )
    assert parse_workflow(dump_workflow(workflow)) == workflow


@pytest.mark.parametrize(
    ("line", "expected"), [(4, "w.toml:4: bad thing"), (None, "w.toml: bad thing")]
)
def test_describe_error(line: int | None, expected: str) -> None:
    """Errors are written FILE:LINE: reason, or FILE: reason without a line."""
    assert describe_error("w.toml", WorkflowError("bad thing", line)) == expected
