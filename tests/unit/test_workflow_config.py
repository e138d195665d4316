"""The documented example ``config/workflow.toml`` and the example callbacks it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.workflow.callbacks import load_callback
from worker.workflow.example_callbacks import add_margin, drop_internal_users
from worker.workflow.loader import load_workflow_file, parse_workflow
from worker.workflow.model import ClientDefinition, Workflow
from worker.workflow.rules import decide

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "workflow.toml"
SHOP = "https://shop.example.com"


@pytest.fixture(scope="module")
def workflow() -> Workflow:
    """The example workflow, parsed."""
    return load_workflow_file(EXAMPLE)


def test_example_parses_with_default_off(workflow: Workflow) -> None:
    """The example is valid, defaults to off and names the page view event."""
    assert workflow.default == "off"
    assert workflow.page_view_event == "Page viewed"


def test_example_lists_the_documented_events(workflow: Workflow) -> None:
    """The example covers identify, page, product, cart, purchase, screen and a disabled one."""
    for name in ("Create user", "Page viewed", "Product viewed", "Added to cart", "Purchased"):
        assert workflow.events[name].enabled
    assert workflow.events["Screen viewed"].enabled
    assert any(not rule.enabled for rule in workflow.events.values())


def test_example_uses_several_match_kinds(workflow: Workflow) -> None:
    """Trigger paths in the example show at least four match kinds and both actions."""
    paths = [p for rule in workflow.events.values() for p in rule.trigger_paths]
    assert len({p.match for p in paths}) >= 4
    assert {p.action for p in paths} == {"fire", "dont_fire"}


def test_example_shows_a_client_definition(workflow: Workflow) -> None:
    """The example's "Added to cart" is also a no-code click on the add-to-cart button."""
    assert workflow.events["Added to cart"].client == (
        ClientDefinition("click", "button.add-to-cart"),
    )


def test_example_collect_is_documented_but_commented_out(workflow: Workflow) -> None:
    """Every example event accepts any source; the collect line is shown commented out."""
    assert {rule.collect for rule in workflow.events.values()} == {"any"}
    text = EXAMPLE.read_text()
    assert "source_filtered" in text
    uncommented = parse_workflow(text.replace('# collect = "server"', 'collect = "server"', 1))
    assert uncommented.events["Purchased"].collect == "server"


def test_example_callbacks_import(workflow: Workflow) -> None:
    """Every callback the example names can be loaded."""
    specs = {rule.callback for rule in workflow.events.values() if rule.callback}
    assert "worker.workflow.example_callbacks:add_margin" in specs
    for spec in specs:
        assert callable(load_callback(spec))


@pytest.mark.parametrize(
    ("name", "url", "fire"),
    [
        ("Page viewed", f"{SHOP}/", True),
        ("Page viewed", f"{SHOP}/checkouts/c/8f1e/thank_you", False),
        ("Page viewed", f"{SHOP}/?utm_source=internal", False),
        ("Product viewed", f"{SHOP}/products/linen-western-shirt", True),
        ("Product viewed", None, False),
        ("Added to cart", f"{SHOP}/products/linen-western-shirt", True),
        ("Added to cart", f"{SHOP}/checkout/pay", False),
        ("Added to cart", None, True),
        ("Contact form submitted", f"{SHOP}/pages/contact", False),
        ("Trial started", None, False),
    ],
)
def test_example_decisions(workflow: Workflow, name: str, url: str | None, fire: bool) -> None:
    """The example decides the sample events as its comments say."""
    assert decide(workflow, name, url).fire is fire


@pytest.mark.parametrize(
    ("products", "cart_value"),
    [
        ([{"product_price": "1500", "product_quantity": "2"}], 3000.0),
        ([{"price": 29.0, "quantity": 2}, {"price": 1.5}], 59.5),
        ([{"price": "n/a"}, "junk", {"price": "nan"}], 0.0),
        (None, 0.0),
    ],
)
def test_add_margin(products: object, cart_value: float) -> None:
    """add_margin sums price times quantity in either naming and applies the default rate."""
    event = add_margin({"properties": {"products": products}})
    assert event["properties"]["cart_value"] == cart_value
    assert event["properties"]["margin"] == round(cart_value * 0.25, 2)


def test_add_margin_uses_the_events_rate() -> None:
    """A margin_rate property overrides the default rate."""
    event = add_margin({"properties": {"products": [{"price": 100}], "margin_rate": 0.5}})
    assert event["properties"]["margin"] == 50.0


@pytest.mark.parametrize(
    ("traits", "properties", "dropped"),
    [
        ({"email": "bob@staff.example.com"}, {}, True),
        ({}, {"email": "BOB@STAFF.EXAMPLE.COM"}, True),
        ({"internal": True}, {}, True),
        ({"email": "ada@example.com"}, {"internal": "yes"}, False),
        ({}, {}, False),
    ],
)
def test_drop_internal_users(traits: dict, properties: dict, dropped: bool) -> None:
    """Staff emails or internal = true drop the event; everyone else passes unchanged."""
    event = {"traits": traits, "properties": properties}
    result = drop_internal_users(event)
    assert (result is None) is dropped
    if not dropped:
        assert result is event
