"""Consent: each sender's format read, the workflow's [consent] parsed and weighed, and
blocked events skipped as consent_denied."""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker.errors import WorkflowError
from worker.inbox import Entry
from worker.normalize import normalize
from worker.prepare import Policy, parse_entries, route
from worker.workflow.loader import (
    dump_workflow,
    parse_workflow,
    workflow_from_dict,
    workflow_to_dict,
)
from worker.workflow.model import Workflow

CATEGORY = "ad_user_data"
STATES = ("granted", "denied", "missing")


def segment_event(state: str) -> dict[str, Any]:
    """A Segment track whose consent for CATEGORY is ``state``."""
    raw: dict[str, Any] = {"type": "track", "event": "Purchased", "userId": "u-1"}
    if state != "missing":
        prefs = {CATEGORY: state == "granted", "analytics": True}
        raw["context"] = {"consent": {"categoryPreferences": prefs}}
    return raw


def rudderstack_event(state: str) -> dict[str, Any]:
    """A RudderStack track: a denied id is listed; consent is missing only without
    consentManagement."""
    raw: dict[str, Any] = {"type": "track", "event": "Purchased", "userId": "u-1"}
    if state != "missing":
        denied = [CATEGORY] if state == "denied" else ["marketing"]
        raw["context"] = {
            "consentManagement": {
                "provider": "custom",
                "allowedConsentIds": ["analytics"],
                "deniedConsentIds": denied,
            }
        }
    return raw


def customerlabs_event(state: str) -> dict[str, Any]:
    """A CustomerLabs track with customProperties.consent, wrapped as usual."""
    custom: dict[str, Any] = {"email": {"t": "string", "v": "a@b.example"}}
    if state != "missing":
        custom["consent"] = {
            "t": "object",
            "v": {
                CATEGORY: {"t": "string", "v": state},
                "analytics_storage": {"t": "string", "v": "granted"},
            },
        }
    return {
        "method": "track",
        "event_name": "Purchased",
        "customerlabs_user_id": "cl-1",
        "properties": {"customProperties": custom},
    }


FORMATS = {
    "segment": segment_event,
    "rudderstack": rudderstack_event,
    "customerlabs": customerlabs_event,
}


def workflow(missing: str, extra: str = "") -> Workflow:
    return parse_workflow(
        f'default = "on"\n[consent]\nrequired = ["{CATEGORY}"]\nmissing = "{missing}"\n{extra}'
    )


def outcome(raw: dict[str, Any], wf: Workflow) -> tuple[str, str | None, str]:
    """Prepare one event: ("ready", None, "") or the skip/dead outcome."""
    entry = Entry(id="1-0", fields={b"event": json.dumps(raw).encode()})
    parsed, dead = parse_entries([entry], wf, Policy(identify_by="user_id"))
    assert dead == []
    prepared = route(parsed, wf, {}, Policy(identify_by="user_id"))
    if prepared.ready:
        return "ready", None, ""
    [o] = prepared.outcomes
    return o.status, o.reason, o.detail


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("missing", ["allow", "deny"])
def test_consent_matrix(fmt: str, state: str, missing: str) -> None:
    """Granted is sent, denied is skipped, missing follows the workflow's ``missing``."""
    status, reason, detail = outcome(FORMATS[fmt](state), workflow(missing))
    should_send = state == "granted" or (state == "missing" and missing == "allow")
    if should_send:
        assert (status, reason) == ("ready", None)
    else:
        assert (status, reason) == ("skipped", "consent_denied")
        assert f"{CATEGORY} {state}" in detail


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_no_required_categories_sends_everything(fmt: str) -> None:
    wf = parse_workflow('default = "on"\n')
    assert outcome(FORMATS[fmt]("denied"), wf)[0] == "ready"


def test_event_overrides_the_required_categories_and_missing() -> None:
    """An event's consent = [] needs nothing; consent_missing overrides missing."""
    extra = '[events.Purchased]\nconsent = []\n[events.Other]\nconsent_missing = "deny"\n'
    wf = workflow("allow", extra)
    assert outcome(segment_event("denied"), wf)[0] == "ready"
    other = {**segment_event("missing"), "event": "Other"}
    assert outcome(other, wf)[:2] == ("skipped", "consent_denied")


def test_rudderstack_or_strategy_needs_one_granted_category() -> None:
    raw = rudderstack_event("denied")
    raw["context"]["consentManagement"]["resolutionStrategy"] = "or"
    wf = parse_workflow('default = "on"\n[consent]\nrequired = ["ad_user_data", "analytics"]\n')
    assert outcome(raw, wf)[0] == "ready"
    raw["context"]["consentManagement"]["resolutionStrategy"] = "and"
    assert outcome(raw, wf)[:2] == ("skipped", "consent_denied")


def test_privacy_requests_pass_the_workflow_wide_consent() -> None:
    """A deletion is never held back by [consent]; only an event's own consent applies."""
    raw = {"type": "track", "event": "User Deleted", "userId": "u-1"}
    assert outcome(raw, workflow("deny"))[0] == "ready"
    wf = workflow("deny", f'[events."User Deleted"]\nconsent = ["{CATEGORY}"]\n')
    assert outcome(raw, wf)[:2] == ("skipped", "consent_denied")


def test_toggle_off_is_decided_before_consent() -> None:
    wf = workflow("deny", "[events.Purchased]\nenabled = false\n")
    assert outcome(segment_event("denied"), wf)[:2] == ("skipped", "toggle_off")


def test_consent_updated_event_reads_its_own_keys() -> None:
    """_cl.trackConsent's event states consent in its properties."""
    raw = ["track", "Consent updated", {"customProperties": {"ad_user_data": "denied"}}]
    event = normalize(raw, received_at=1)
    assert event.consent is not None and event.consent.state(CATEGORY) == "denied"


def test_consent_object_is_not_event_data() -> None:
    event = normalize(customerlabs_event("granted"), received_at=1)
    assert "consent" not in event.properties


# -- the [consent] block in the workflow file -----------------------------------------


def test_consent_block_round_trips_through_dict_json_and_toml() -> None:
    wf = workflow("deny", '[events.X]\nconsent = ["a", "b"]\nconsent_missing = "allow"\n')
    assert wf.consent.required == (CATEGORY,) and wf.consent.missing == "deny"
    assert wf.events["X"].consent == ("a", "b")
    data = workflow_to_dict(wf)
    assert workflow_from_dict(json.loads(json.dumps(data))) == wf
    assert parse_workflow(dump_workflow(wf)) == wf


def test_workflow_without_consent_stores_no_consent_key() -> None:
    """A workflow that uses no consent stays readable by a relay that predates it."""
    assert "consent" not in workflow_to_dict(parse_workflow('default = "on"\n'))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[consent]\nrequired = "ads"\n', 2, "required must be a list"),
        ('[consent]\nmissing = "maybe"\n', 2, 'missing must be "allow" or "deny"'),
        ("[consent]\nnope = 1\n", 2, 'unknown key "nope" in [consent]'),
        ('[events.X]\nconsent = [""]\n', 2, "consent must be a list"),
        ('[events.X]\nconsent_missing = "no"\n', 2, "consent_missing must be"),
    ],
)
def test_bad_consent_settings_are_refused_with_their_line(
    text: str, line: int, message: str
) -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text)
    assert caught.value.line == line and message in caught.value.reason


def test_rudderstack_consent_ids_in_every_shape_its_sdks_send() -> None:
    """Ids as strings, as objects with an id, or as an object keyed by id."""
    for denied in (["ads"], [{"id": "ads"}], {"ads": "Advertising"}):
        raw = {
            "type": "track",
            "event": "X",
            "context": {"consentManagement": {"deniedConsentIds": denied}},
        }
        consent = normalize(raw, received_at=1).consent
        assert consent is not None and consent.state("ads") == "denied", denied
        assert consent.state("analytics") == "granted"
