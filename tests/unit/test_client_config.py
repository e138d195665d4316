"""What ``GET /v1/config`` tells the browser tracker about the live workflow."""

from __future__ import annotations

import json
from pathlib import Path

from worker.workflow.client_config import client_config
from worker.workflow.loader import load_workflow_file, parse_workflow
from worker.workflow.model import Workflow

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "workflow.toml"

WORKFLOW = parse_workflow(
    """\
page_view_event = "Page view"

[events."Added to cart"]
require_url = true

[[events."Added to cart".trigger_paths]]
pattern = "/checkout/*"
match = "glob"
action = "dont_fire"

[[events."Added to cart".trigger_paths]]
pattern = "^https://shop\\\\.example/"
match = "regex"
action = "fire"

[[events."Added to cart".client]]
on = "click"
selector = "button.add-to-cart"

[[events."Added to cart".client]]
on = "submit"
selector = "form#cart"

[events."Signed up"]
collect = "client"

[[events."Signed up".client]]
on = "submit"
selector = "form.signup"

[events."Order Completed"]
collect = "server"

[[events."Order Completed".client]]
on = "click"
selector = "button.pay"

[events."Contact"]
enabled = false

[[events."Contact".client]]
on = "submit"
selector = "form.contact"

[events."Page view"]
"""
)


def test_shape() -> None:
    """Enabled events not limited to servers, with paths, require_url and definitions."""
    assert client_config(WORKFLOW) == {
        "pageViewEvent": "Page view",
        "default": "off",
        "events": {
            "Added to cart": {
                "trigger_paths": [
                    {"pattern": "/checkout/*", "match": "glob", "action": "dont_fire"},
                    {"pattern": "^https://shop\\.example/", "match": "regex", "action": "fire"},
                ],
                "require_url": True,
                "client": [
                    {"on": "click", "selector": "button.add-to-cart"},
                    {"on": "submit", "selector": "form#cart"},
                ],
            },
            "Signed up": {
                "trigger_paths": [],
                "require_url": False,
                "client": [{"on": "submit", "selector": "form.signup"}],
            },
            "Page view": {"trigger_paths": [], "require_url": False, "client": []},
        },
    }


def test_server_only_and_disabled_events_are_left_out() -> None:
    """The browser never learns selectors of events it must not send."""
    events = client_config(WORKFLOW)["events"]
    assert "Order Completed" not in events
    assert "Contact" not in events
    assert "button.pay" not in json.dumps(client_config(WORKFLOW))


def test_default_on_is_passed_on() -> None:
    """A workflow whose default is on says so, so the browser sends unlisted events."""
    config = client_config(Workflow(default="on"))
    assert config == {"pageViewEvent": "Page viewed", "default": "on", "events": {}}


def test_the_empty_workflow() -> None:
    """Nothing stored: default off, the standard page view name and no events."""
    assert client_config(Workflow()) == {
        "pageViewEvent": "Page viewed",
        "default": "off",
        "events": {},
    }


def test_the_result_is_plain_json() -> None:
    """The object survives a JSON round trip unchanged (no tuples, no model objects)."""
    config = client_config(WORKFLOW)
    assert json.loads(json.dumps(config)) == config


def test_the_example_sends_the_add_to_cart_button() -> None:
    """The documented example gives the browser its no-code "Added to cart" click."""
    config = client_config(load_workflow_file(EXAMPLE))
    assert config["pageViewEvent"] == "Page viewed"
    cart = config["events"]["Added to cart"]
    assert cart["client"] == [{"on": "click", "selector": "button.add-to-cart"}]
    assert {"pattern": "/checkout/*", "match": "glob", "action": "dont_fire"} in cart[
        "trigger_paths"
    ]
    assert "Contact form submitted" not in config["events"]
