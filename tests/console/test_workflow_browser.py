"""The workflow page in a real browser: switches, the trigger-path editor, the URL test,
a two-editor race, a viewer, CSRF and an attacker-named event. Controls are found by their
accessible names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Page, expect

from tests.console.conftest import ConsoleServer, sign_in
from worker import catalogue
from worker.workflow import rules
from worker.workflow.loader import parse_workflow
from worker.workflow.store import WorkflowStore

XSS_NAME = "<img src=x onerror=alert(1)>"


def apply(console: ConsoleServer, tmp_path: Path, *names: str, via_cli: bool = False) -> None:
    """Make a workflow listing ``names`` (all on) live: through ``cio-relay workflow
    apply`` when ``via_cli``, else straight through the store (faster)."""
    text = 'default = "off"\n' + "".join(f'\n[events."{n}"]\nenabled = true\n' for n in names)
    if not via_cli:
        store(console).replace(parse_workflow(text), author="test")
        return
    path = tmp_path / "workflow.toml"
    path.write_text(text)
    done = console.cli("workflow", "apply", str(path))
    assert done.returncode == 0, done.stderr


def store(console: ConsoleServer) -> WorkflowStore:
    return WorkflowStore(console.redis, console.keys)


def event_url(console: ConsoleServer, name: str) -> str:
    return f"{console.url}/workflow/event?name={quote(name)}"


def test_switch_an_event_off_and_save(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "Added to cart", "Signed up")
    page = sign_in(new_page(), console_server, "editor")
    switch = page.get_by_role("switch", name="Added to cart")
    expect(switch).to_be_checked()
    switch.uncheck()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("Saved version")
    expect(page.get_by_role("switch", name="Added to cart")).not_to_be_checked()
    expect(page.get_by_role("switch", name="Signed up")).to_be_checked()
    live = store(console_server).get()
    assert live.events["Added to cart"].enabled is False
    assert live.events["Signed up"].enabled is True
    [latest, applied, *_] = store(console_server).history()
    assert (latest.author, latest.note) == ("editor", "Added to cart: off")
    assert applied.author == "test"


def test_dont_fire_path_and_url_test(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "Checkout step")
    page = new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, console_server, "editor")
    page.get_by_role("link", name="Checkout step").click()
    page.get_by_role("button", name="Add trigger path").click()
    page.get_by_label("Pattern").last.fill("/checkout/*")
    page.get_by_label("Match").last.select_option("glob")
    page.get_by_label("Action").last.select_option(label="Don't Fire")
    page.get_by_label("URL to test").fill("https://shop.example/checkout/pay?x=1")
    with page.expect_request(lambda r: r.method == "POST") as sent:
        page.get_by_role("button", name="Test URL").click()
    result = page.locator("#url-result")
    expect(result).to_contain_text("Suppressed")
    expect(result).to_contain_text("rule 1: Don't Fire glob '/checkout/*' matches")
    # htmx sent the test in place, under the CSP (no violations logged).
    assert sent.value.headers.get("hx-request") == "true"
    assert errors == []
    # Not saved yet: the live workflow still fires there.
    live = store(console_server).get()
    assert rules.decide(live, "Checkout step", "https://shop.example/checkout/pay").fire
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved version")
    live = store(console_server).get()
    assert not rules.decide(live, "Checkout step", "https://shop.example/checkout/pay").fire
    assert rules.decide(live, "Checkout step", "https://shop.example/cart").fire
    page.get_by_label("URL to test").fill("https://shop.example/cart")
    page.get_by_role("button", name="Test URL").click()
    expect(result).to_contain_text("Fire: no Don't Fire path matches this URL")
    # Every match kind is offered; removing the row and saving empties the paths.
    options = page.get_by_label("Match").last.locator("option").all_inner_texts()
    assert options == ["exact", "prefix", "contains", "glob", "regex"]
    page.get_by_role("button", name="Remove trigger path 1").click()
    expect(page.get_by_label("Pattern")).to_have_count(0)
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved version")
    assert store(console_server).get().events["Checkout step"].trigger_paths == ()


def test_invalid_rule_shows_the_loaders_error(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "Bad regex")
    before = store(console_server).version()
    page = sign_in(new_page(), console_server, "editor", "/workflow/event?name=Bad%20regex")
    page.get_by_role("button", name="Add trigger path").click()
    page.get_by_label("Pattern").last.fill("(unclosed")
    page.get_by_label("Match").last.select_option("regex")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text('invalid regex "(unclosed"')
    assert store(console_server).version() == before


def test_second_stale_save_is_refused_and_nothing_is_lost(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "Race event")
    first = sign_in(new_page(), console_server, "editor", "/workflow/event?name=Race%20event")
    second = sign_in(new_page(), console_server, "editor2", "/workflow/event?name=Race%20event")
    first.get_by_role("switch", name="Race event").uncheck()
    first.get_by_role("button", name="Save changes").click()
    expect(first.get_by_role("status").first).to_contain_text("Saved version")
    second.get_by_label("Callback").fill("worker.workflow.example_callbacks:drop_internal_users")
    second.get_by_role("button", name="Save changes").click()
    alert = second.get_by_role("alert")
    expect(alert).to_contain_text("the workflow changed since you loaded it")
    expect(alert).to_contain_text("editor saved version")
    live = store(console_server).get().events["Race event"]
    assert live.enabled is False and live.callback is None
    assert store(console_server).history()[0].author == "editor"


def test_viewer_sees_but_cannot_change(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "Viewer event")
    before = store(console_server).version()
    page = sign_in(new_page(), console_server, "viewer")
    expect(page.get_by_role("switch", name="Viewer event")).to_be_disabled()
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)
    page.goto(event_url(console_server, "Viewer event"))
    expect(page.get_by_role("switch", name="Viewer event")).to_be_disabled()
    expect(page.get_by_role("button", name="Add trigger path")).to_have_count(0)
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)
    # A viewer may still test a URL, against the live rule.
    page.get_by_label("URL to test").fill("https://shop.example/anything")
    page.get_by_role("button", name="Test URL").click()
    expect(page.locator("#url-result")).to_contain_text("Fire: no trigger paths")
    token = page.locator("input[name=csrf_token]").first.input_value()
    form = {"csrf_token": token, "version": str(before), "shown": "Viewer event"}
    reply = page.request.post(console_server.url + "/workflow", form=form)
    assert reply.status == 403
    form = {"csrf_token": token, "version": str(before), "name": "Viewer event", "op": "save"}
    assert page.request.post(console_server.url + "/workflow/event", form=form).status == 403
    assert store(console_server).version() == before


def test_post_without_csrf_token_is_403(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "Csrf event")
    before = store(console_server).version()
    page = sign_in(new_page(), console_server, "editor")
    form = {"version": str(before), "shown": "Csrf event"}
    assert page.request.post(console_server.url + "/workflow", form=form).status == 403
    form["csrf_token"] = "forged"
    assert page.request.post(console_server.url + "/workflow", form=form).status == 403
    assert store(console_server).version() == before
    assert store(console_server).get().events["Csrf event"].enabled


def test_attacker_named_event_renders_as_text(
    console_server: ConsoleServer, new_page: Callable[..., Page]
) -> None:
    pipe = console_server.redis.pipeline(transaction=True)
    catalogue.note(pipe, console_server.keys, [(XSS_NAME, "client")], 1_800_000_000.0)
    pipe.execute()
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, console_server, "editor")
    expect(page.get_by_role("link", name=XSS_NAME)).to_be_visible()
    expect(page.get_by_role("switch", name=XSS_NAME)).to_be_visible()
    page.get_by_role("link", name=XSS_NAME).click()
    expect(page.get_by_role("heading", name=f"Event: {XSS_NAME}")).to_be_visible()
    assert page.locator("img").count() == 0
    assert dialogs == []


def test_essentials_work_without_javascript(
    console_server: ConsoleServer, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    apply(console_server, tmp_path, "No script event")
    page = sign_in(new_page(java_script_enabled=False), console_server, "editor")
    page.get_by_role("switch", name="No script event").uncheck()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("Saved version")
    page.get_by_role("link", name="No script event").click()
    page.get_by_role("button", name="Add trigger path").click()
    page.get_by_label("Pattern").last.fill("/admin")
    page.get_by_label("Match").last.select_option("prefix")
    page.get_by_label("Action").last.select_option(label="Don't Fire")
    page.get_by_label("URL to test").fill("/admin/users")
    page.get_by_role("button", name="Test URL").click()
    expect(page.locator("#url-result")).to_contain_text("Suppressed")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved version")
    rule = store(console_server).get().events["No script event"]
    assert rule.enabled is False and [p.pattern for p in rule.trigger_paths] == ["/admin"]
