"""Dead letters in a real browser against a running relay: dead-letter an event, fix its
cause, replay it with the console's Replay button and see Customer.io (the emulator) get it
once with the same ULID; a viewer sees no Replay and is refused; event data renders as text."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.console.conftest import sign_in
from tests.console.relay_console import RelayConsole, relay_console
from tests.integration.conftest import emulator, wait_until
from worker import audit
from worker.dlq import DeadLetterQueue, Filter
from worker.producer import enqueue

__all__ = ["emulator", "relay_console"]

XSS_NAME = "<img src=x onerror=window.__xss=1><script>window.__xss=2</script>"


def dead_letters(rc: RelayConsole, name: str) -> list[dict[str, str]]:
    dlq = DeadLetterQueue(rc.console.redis, rc.console.keys)
    return [letter.as_dict() for letter in dlq.scan(Filter(name=name))]


def test_replay_after_fixing_the_cause_delivers_once_with_the_same_ulid(
    relay_console: RelayConsole, new_page: Callable[[], Page]
) -> None:
    rc = relay_console
    prefix = rc.console.keys.prefix
    purchase = {
        "type": "track",
        "event": "Purchased",
        "anonymousId": "anon-replay-1",
        "properties": {"order": "A-1"},
    }
    enqueue(rc.console.redis, purchase, prefix=prefix)
    wait_until(lambda: len(dead_letters(rc, "Purchased")) == 1, 30, "the purchase dead-lettered")
    letter = dead_letters(rc, "Purchased")[0]
    assert letter["reason"] == "missing_identifier"

    page = sign_in(new_page(), rc.console, "editor", "/dlq")
    row = page.get_by_role("row").filter(has_text="missing_identifier")
    expect(row).to_contain_text("Purchased")
    row.get_by_role("link").click()
    expect(page.get_by_role("row", name="Event id (ULID)")).to_contain_text(letter["event_id"])

    # The cause: nobody is known for the anonymous id. An identify teaches the relay.
    enqueue(
        rc.console.redis,
        {"type": "identify", "anonymousId": "anon-replay-1", "traits": {"email": "r1@example.com"}},
        prefix=prefix,
    )
    key = rc.console.keys.identity("anon", "anon-replay-1")
    wait_until(lambda: rc.console.redis.get(key) is not None, 30, "the identity remembered")

    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("would replay 1 dead letter")
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Replayed 1")

    def delivered() -> list[dict[str, object]]:
        return [e for e in rc.emulator.events() if e.get("id") == letter["event_id"]]

    wait_until(lambda: len(delivered()) == 1, 30, "the replayed purchase delivered")
    wait_until(lambda: int(rc.console.redis.xlen(rc.console.keys.inbox)) == 0, 30, "inbox empty")
    assert len(delivered()) == 1
    assert dead_letters(rc, "Purchased") == []
    actions = [(e.user, e.action) for e in audit.read(rc.console.redis, rc.console.keys)]
    assert ("editor", "dlq.replay") in actions


def test_viewer_sees_no_replay_and_a_replay_post_is_refused(
    relay_console: RelayConsole, new_page: Callable[[], Page]
) -> None:
    rc = relay_console
    enqueue(
        rc.console.redis,
        {"type": "track", "event": "Purchased", "anonymousId": "anon-viewer"},
        prefix=rc.console.keys.prefix,
    )
    wait_until(lambda: len(dead_letters(rc, "Purchased")) == 1, 30, "a dead letter")
    letter = dead_letters(rc, "Purchased")[0]
    page = sign_in(new_page(), rc.console, "viewer", "/dlq")
    expect(page.get_by_role("row").filter(has_text="missing_identifier")).to_have_count(1)
    expect(page.get_by_role("button", name="Replay")).to_have_count(0)
    expect(page.get_by_role("button", name="Purge")).to_have_count(0)
    page.get_by_role("row").filter(has_text="missing_identifier").get_by_role("link").click()
    expect(page.get_by_role("heading", name="Dead letter")).to_be_visible()
    expect(page.get_by_role("button", name="Replay")).to_have_count(0)
    token = page.evaluate(
        "fetch('/test-event').then(r => r.text()).then(t => "
        't.match(/name="csrf_token" value="([^"]+)"/)[1])'
    )
    reply = page.request.post(
        rc.console.url + "/dlq/replay",
        form={"id": letter["id"], "confirm": "yes", "csrf_token": token},
    )
    assert reply.status == 403
    assert [d["id"] for d in dead_letters(rc, "Purchased")] == [letter["id"]]
    # Clean up for the other tests: an editor purges it through the console.
    editor = sign_in(new_page(), rc.console, "editor", f"/dlq/entry/{letter['id']}")
    editor.get_by_role("button", name="Purge", exact=True).click()
    expect(editor.get_by_role("status")).to_contain_text("would purge 1 dead letter")
    editor.get_by_role("button", name="Purge", exact=True).click()
    expect(editor.get_by_role("status")).to_contain_text("Purged 1")
    assert dead_letters(rc, "Purchased") == []


def test_an_event_name_with_markup_renders_as_text(
    relay_console: RelayConsole, new_page: Callable[[], Page]
) -> None:
    rc = relay_console
    done = rc.console.cli("workflow", "enable", XSS_NAME)
    assert done.returncode == 0, done.stderr
    enqueue(
        rc.console.redis,
        {"type": "track", "event": XSS_NAME, "anonymousId": "anon-xss"},
        prefix=rc.console.keys.prefix,
    )
    wait_until(lambda: len(dead_letters(rc, XSS_NAME)) == 1, 30, "the markup event dead-lettered")
    page = sign_in(new_page(), rc.console, "editor", "/dlq")
    for path in ("/dlq", "/activity", f"/dlq/entry/{dead_letters(rc, XSS_NAME)[0]['id']}"):
        page.goto(rc.console.url + path)
        expect(page.get_by_text(XSS_NAME).first).to_be_visible()
        assert page.locator("main img").count() == 0
        assert page.evaluate("window.__xss") is None
    page.get_by_role("link", name="Dry run this event").click()
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("status")).to_contain_text("missing_identifier")
    assert page.evaluate("window.__xss") is None
