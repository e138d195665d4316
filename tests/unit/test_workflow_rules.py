"""The workflow decision: toggles, the global default and URL trigger paths."""

from __future__ import annotations

import pytest

from worker.workflow.model import EventRule, TriggerPath, Workflow
from worker.workflow.rules import Decision, decide, matches, url_path

SHOP = "https://shop.example.com"


def only(*paths: TriggerPath, require_url: bool = False) -> Workflow:
    """A workflow listing one enabled event, "E", with the given trigger paths."""
    return Workflow(events={"E": EventRule(require_url=require_url, trigger_paths=paths)})


def fire(pattern: str, match: str = "exact") -> TriggerPath:
    return TriggerPath(pattern, match, "fire")  # type: ignore[arg-type]


def dont(pattern: str, match: str = "exact") -> TriggerPath:
    return TriggerPath(pattern, match, "dont_fire")  # type: ignore[arg-type]


FIRE = Decision(True, None)
TOGGLE_OFF = Decision(False, "toggle_off")
PATH_BLOCKED = Decision(False, "path_blocked")


@pytest.mark.parametrize(
    ("default", "expected"), [("off", TOGGLE_OFF), ("on", FIRE)], ids=["off", "on"]
)
def test_unlisted_event_follows_the_default(default: str, expected: Decision) -> None:
    """An event the workflow does not list is sent only when the default is on."""
    workflow = Workflow(default=default)  # type: ignore[arg-type]
    assert decide(workflow, "Anything", f"{SHOP}/") == expected


def test_default_workflow_is_off() -> None:
    """A workflow built with no arguments skips every event."""
    assert decide(Workflow(), "Page viewed", None) == TOGGLE_OFF


@pytest.mark.parametrize("default", ["off", "on"])
def test_disabled_event_is_toggle_off_whatever_the_default(default: str) -> None:
    """A listed event with enabled = false is skipped even when the default is on."""
    workflow = Workflow(default=default, events={"E": EventRule(enabled=False)})  # type: ignore[arg-type]
    assert decide(workflow, "E", f"{SHOP}/") == TOGGLE_OFF


def test_enabled_event_without_rules_fires_with_or_without_url() -> None:
    """An enabled event with no trigger paths fires whatever its URL."""
    workflow = Workflow(events={"E": EventRule()})
    assert decide(workflow, "E", None) == FIRE
    assert decide(workflow, "E", f"{SHOP}/x") == FIRE


def test_event_names_are_case_sensitive() -> None:
    """Listing "Order Completed" does not enable "Order completed"."""
    workflow = Workflow(events={"Order Completed": EventRule()})
    assert decide(workflow, "Order completed", None) == TOGGLE_OFF


@pytest.mark.parametrize(
    ("match", "pattern", "url", "hit"),
    [
        ("exact", "/cart", f"{SHOP}/cart", True),
        ("exact", "/cart", f"{SHOP}/cart/items", False),
        ("prefix", "/products/", f"{SHOP}/products/shirt", True),
        ("prefix", "/products/", f"{SHOP}/collections/products/", False),
        ("contains", "summer", f"{SHOP}/collections/summer-sale", True),
        ("contains", "winter", f"{SHOP}/collections/summer-sale", False),
        ("glob", "/checkout/*", f"{SHOP}/checkout/step/2", True),
        ("glob", "/checkout/*", f"{SHOP}/checkouts/1", False),
        ("glob", "/p/[ab]?", f"{SHOP}/p/a1", True),
        ("glob", "/p/[ab]?", f"{SHOP}/p/c1", False),
        ("glob", "/CART", f"{SHOP}/cart", False),
        ("regex", r"/orders/\d+$", f"{SHOP}/account/orders/42", True),
        ("regex", r"/orders/\d+$", f"{SHOP}/account/orders/42/edit", False),
        ("regex", r"^/account", f"{SHOP}/account", False),
    ],
)
def test_every_match_kind(match: str, pattern: str, url: str, hit: bool) -> None:
    """Each match kind decides as documented (exact, prefix, contains, glob, regex search)."""
    assert matches(fire(pattern, match), url) is hit


@pytest.mark.parametrize(
    ("pattern", "match", "url", "hit"),
    [
        ("/cart", "exact", f"{SHOP}/cart?coupon=X", True),
        ("/cart", "exact", f"{SHOP}/cart#top", True),
        ("coupon=X", "contains", f"{SHOP}/cart?coupon=X", True),
        ("/cart?coupon", "contains", f"{SHOP}/cart?coupon=X", False),
        (f"{SHOP}/cart", "exact", f"{SHOP}/cart?coupon=X", False),
        (f"{SHOP}/", "prefix", f"{SHOP}/cart", True),
        ("https://other.example.com/", "prefix", f"{SHOP}/cart", False),
        ("*utm_source=mail*", "glob", f"{SHOP}/?utm_source=mail", True),
    ],
)
def test_path_patterns_ignore_the_query_and_url_patterns_see_it(
    pattern: str, match: str, url: str, hit: bool
) -> None:
    """A pattern starting with "/" sees only the path; any other sees the whole URL."""
    assert matches(fire(pattern, match), url) is hit


@pytest.mark.parametrize(
    ("url", "path"),
    [
        (f"{SHOP}/a/b?x=1#f", "/a/b"),
        (SHOP, "/"),
        ("/bare/path?q=1", "/bare/path"),
        ("/bare/path", "/bare/path"),
        ("http://[broken/a?b", "http://[broken/a"),
    ],
)
def test_url_path(url: str, path: str) -> None:
    """The path of a URL, a bare path, a host without path, or a malformed URL."""
    assert url_path(url) == path


def test_path_pattern_matches_a_bare_path_url() -> None:
    """An event whose URL is only a path is matched against path patterns."""
    assert decide(only(fire("/cart")), "E", "/cart") == FIRE


def test_dont_fire_beats_fire() -> None:
    """A URL matching both a fire and a dont_fire rule is blocked."""
    workflow = only(fire(f"{SHOP}/", "prefix"), dont("/checkout/*", "glob"))
    assert decide(workflow, "E", f"{SHOP}/checkout/pay") == PATH_BLOCKED


def test_dont_fire_order_does_not_matter() -> None:
    """The dont_fire rule wins even when listed after the fire rule that matches."""
    workflow = only(dont("/checkout/*", "glob"), fire(f"{SHOP}/", "prefix"))
    assert decide(workflow, "E", f"{SHOP}/checkout/pay") == PATH_BLOCKED


def test_fire_rules_must_match_when_present() -> None:
    """With fire rules, a URL matching none of them is blocked."""
    workflow = only(fire("/products/", "prefix"), fire("/cart"))
    assert decide(workflow, "E", f"{SHOP}/about") == PATH_BLOCKED


def test_any_fire_rule_is_enough() -> None:
    """A URL matching one of several fire rules fires."""
    workflow = only(fire("/products/", "prefix"), fire("/cart"))
    assert decide(workflow, "E", f"{SHOP}/cart") == FIRE


def test_only_dont_fire_rules_let_other_urls_through() -> None:
    """Without fire rules, a URL that no dont_fire rule matches fires."""
    workflow = only(dont("/admin", "prefix"))
    assert decide(workflow, "E", f"{SHOP}/shop") == FIRE
    assert decide(workflow, "E", f"{SHOP}/admin/users") == PATH_BLOCKED


@pytest.mark.parametrize("url", [None, ""])
def test_no_url_skips_path_rules(url: str | None) -> None:
    """An event without a URL ignores the path rules unless require_url is set."""
    assert decide(only(fire("/cart")), "E", url) == FIRE


@pytest.mark.parametrize("url", [None, ""])
def test_no_url_is_blocked_when_required(url: str | None) -> None:
    """An event with require_url and no URL is blocked."""
    assert decide(only(fire("/cart"), require_url=True), "E", url) == PATH_BLOCKED


def test_require_url_without_rules_fires_with_url() -> None:
    """require_url alone only asks for a URL; any URL then fires."""
    assert decide(only(require_url=True), "E", f"{SHOP}/x") == FIRE


def test_glob_and_regex_are_compiled_once_per_rule() -> None:
    """Glob and regex rules carry their compiled pattern; the others need none."""
    assert fire("/a*", "glob").compiled is not None
    assert fire("a+", "regex").compiled is not None
    assert fire("/a", "prefix").compiled is None
