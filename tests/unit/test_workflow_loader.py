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
from worker.workflow.model import ClientDefinition, EventRule, TriggerPath, Workflow

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


SOURCES = """\
[events."Added to cart"]
collect = "client"

[[events."Added to cart".trigger_paths]]
pattern = "/checkout/*"
match = "glob"
action = "dont_fire"

[[events."Added to cart".client]]
on = "click"
selector = "button.add-to-cart"

[[events."Added to cart".client]]
on = "submit"
selector = 'form[data-cart="1"] > .x'

[events.Purchased]
collect = "server"

[events."Page viewed"]
collect = "any"
"""

SOURCES_WORKFLOW = Workflow(
    events={
        "Added to cart": EventRule(
            collect="client",
            trigger_paths=(TriggerPath("/checkout/*", "glob", "dont_fire"),),
            client=(
                ClientDefinition("click", "button.add-to-cart"),
                ClientDefinition("submit", 'form[data-cart="1"] > .x'),
            ),
        ),
        "Purchased": EventRule(collect="server"),
        "Page viewed": EventRule(),
    }
)


def test_parses_collect_and_client_definitions() -> None:
    """collect and [[events."X".client]] tables land in the model, in file order."""
    assert parse_workflow(SOURCES) == SOURCES_WORKFLOW


def test_collect_defaults_to_any_and_client_to_none() -> None:
    """An event without collect or client tables takes any source and has no definitions."""
    rule = parse_workflow('[events."X"]\n').events["X"]
    assert (rule.collect, rule.client) == ("any", ())


def test_client_definitions_as_inline_tables() -> None:
    """The inline-table spelling of client definitions parses the same."""
    text = 'events."E" = {collect = "server", client = [{on = "submit", selector = "form"}]}\n'
    rule = parse_workflow(text).events["E"]
    assert (rule.collect, rule.client) == ("server", (ClientDefinition("submit", "form"),))


def test_a_selector_of_500_characters_is_accepted() -> None:
    """The selector limit is inclusive: 500 characters pass."""
    selector = "a" * 500
    text = f'[[events."A".client]]\non = "click"\nselector = "{selector}"\n'
    assert parse_workflow(text).events["A"].client[0].selector == selector


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            '[events."A"]\nenabled = true\ncollect = "browser"\n',
            3,
            'event "A": collect must be one of any, server, client, not "browser"',
        ),
        ('[events."A"]\ncollect = "Server"\n', 2, "collect must be one of any, server, client"),
        (
            '[events."A"]\ncollect = true\n',
            2,
            "collect must be one of any, server, client, not true",
        ),
        ('[events."A"]\ncollect = ""\n', 2, 'collect must be one of any, server, client, not ""'),
        ('[events."A"]\nclient = "button"\n', 2, "client must be a list of tables"),
        (
            '[events."A"]\nclient = ["button"]\n',
            2,
            'event "A", client definition 1 must be a table',
        ),
        ('[events."A"]\nclient = {on = "click"}\n', 2, "client must be a list of tables"),
    ],
)
def test_collect_and_client_errors_name_the_line(text: str, line: int, needle: str) -> None:
    """A bad collect or client value is refused with its reason and line."""
    exc = error_of(text)
    assert needle in exc.reason
    assert exc.line == line


CLIENTS = """\
[events."A"]
enabled = true

[[events."A".client]]
on = "click"
selector = "a.buy"

[[events."A".client]]
{body}
"""


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ('on = "hover"\nselector = "a"', 9, 'on must be one of click, submit, not "hover"'),
        ('on = "Click"\nselector = "a"', 9, "on must be one of click, submit"),
        ('on = 1\nselector = "a"', 9, "on must be one of click, submit, not the number 1"),
        ('on = "click"\nselector = ""', 10, "selector must be a non-empty string"),
        ('on = "click"\nselector = "   "', 10, "selector must be a non-empty string"),
        ('on = "click"\nselector = ["a"]', 10, "selector must be a non-empty string"),
        ('on = "click"\nselector = "a\\nb"', 10, "selector must not contain control characters"),
        ('on = "click"\nselector = "a\\u0000"', 10, "must not contain control characters"),
        ('on = "click"\nselector = "a\\u0085"', 10, "must not contain control characters"),
        ('on = "click"\nselector = "a\\u007f"', 10, "must not contain control characters"),
        (
            f'on = "click"\nselector = "{"a" * 501}"',
            10,
            "selector is 501 characters long; the limit is 500",
        ),
        ('on = "click"', 8, "selector is missing"),
        ('selector = "a"', 8, "on is missing"),
        ('on = "click"\nselector = "a"\nevent = "B"', 11, 'unknown key "event"'),
    ],
)
def test_client_definition_errors_name_the_definition_and_line(
    body: str, line: int, needle: str
) -> None:
    """A bad client definition is reported as the event's n-th definition on its line."""
    exc = error_of(CLIENTS.format(body=body))
    assert needle in exc.reason
    assert 'event "A", client definition 2' in exc.reason
    assert exc.line == line


def test_unknown_event_key_lists_collect_and_client() -> None:
    """The unknown-key message names the new keys among the expected ones."""
    exc = error_of('[events."A"]\ncolect = "server"\n')
    assert exc.line == 2
    assert "expected enabled, callback, require_url, collect, trigger_paths, client" in exc.reason


def test_export_round_trips_collect_and_client() -> None:
    """dump_workflow writes collect and client tables that parse back to an equal workflow."""
    assert parse_workflow(dump_workflow(SOURCES_WORKFLOW)) == SOURCES_WORKFLOW


def test_export_writes_collect_only_when_not_any() -> None:
    """collect = "any" is the default and is left out; the other modes are written."""
    text = dump_workflow(SOURCES_WORKFLOW)
    assert text.count("collect = ") == 2
    assert 'collect = "client"' in text
    assert 'collect = "server"' in text
    assert (
        '[[events."Added to cart".client]]\non = "click"\nselector = "button.add-to-cart"\n' in text
    )


def test_dict_form_carries_collect_and_client() -> None:
    """The stored form has collect and client where set and rebuilds an equal workflow."""
    data = workflow_to_dict(SOURCES_WORKFLOW)
    cart = data["events"]["Added to cart"]
    assert cart["collect"] == "client"
    assert cart["client"] == [
        {"on": "click", "selector": "button.add-to-cart"},
        {"on": "submit", "selector": 'form[data-cart="1"] > .x'},
    ]
    assert "collect" not in data["events"]["Page viewed"]
    assert "client" not in data["events"]["Purchased"]
    assert workflow_from_dict(data) == SOURCES_WORKFLOW


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"collect": "web"}, 'collect must be one of any, server, client, not "web"'),
        ({"client": [{"on": "click", "selector": "a\tb"}]}, "control characters"),
    ],
)
def test_dict_form_is_checked_too(spec: dict[str, object], needle: str) -> None:
    """A stored workflow with a bad collect or selector is refused, not half-applied."""
    with pytest.raises(WorkflowError, match=needle):
        workflow_from_dict({"events": {"A": spec}})


SELECTORS = st.text(min_size=1, max_size=500).filter(
    lambda s: s.strip() != "" and not any(c < " " or "\x7f" <= c <= "\x9f" for c in s)
)


@given(
    selector=SELECTORS,
    on=st.sampled_from(["click", "submit"]),
    collect=st.sampled_from(["any", "server", "client"]),
)
def test_export_round_trips_any_selector(selector: str, on: str, collect: str) -> None:
    """Quotes, backslashes and non-ASCII in a selector survive export and parse."""
    workflow = Workflow(
        events={"E": EventRule(collect=collect, client=(ClientDefinition(on, selector),))}  # type: ignore[arg-type]
    )
    assert parse_workflow(dump_workflow(workflow)) == workflow
