"""Reading each sender's consent object into a ``Consent`` (see README, The Segment spec)."""

from __future__ import annotations

from typing import Any

from worker.consent import Consent

_YES = frozenset({"granted", "true", "yes", "1", "allow", "allowed"})
_NO = frozenset({"denied", "false", "no", "0", "deny"})
# Names a CustomerLabs trackConsent call gives its keys (Google Consent Mode's).
CONSENT_UPDATED = "Consent updated"


def from_context(context: dict[str, Any]) -> Consent | None:
    """Segment's ``context.consent.categoryPreferences`` (true granted, false denied, an
    absent category missing), else RudderStack's ``context.consentManagement`` (an id in
    ``deniedConsentIds`` denied, every other granted; ``resolutionStrategy = "or"``: one
    granted category suffices); None when the event carries neither."""
    segment = context.get("consent")
    if isinstance(segment, dict):
        preferences = segment.get("categoryPreferences")
        states = (
            {k: v for k, v in preferences.items() if isinstance(v, bool)}
            if isinstance(preferences, dict)
            else {}
        )
        return Consent("segment", states)
    rudder = context.get("consentManagement")
    if isinstance(rudder, dict):
        states = {name: True for name in _names(rudder.get("allowedConsentIds"))}
        states.update({name: False for name in _names(rudder.get("deniedConsentIds"))})
        strategy = rudder.get("resolutionStrategy")
        any_category = isinstance(strategy, str) and strategy.strip().lower() == "or"
        return Consent("rudderstack", states, others_granted=True, any_category=any_category)
    return None


def from_customerlabs(value: object) -> Consent | None:
    """CustomerLabs' ``customProperties.consent`` (already unwrapped): ``{"ad_user_data":
    "granted", "ad_storage": "denied"}``; an absent category is missing."""
    if not isinstance(value, dict):
        return None
    return Consent("customerlabs", _states(value))


def from_consent_keys(data: dict[str, Any]) -> Consent | None:
    """A ``Consent updated`` event (``_cl.trackConsent``) states consent in its own
    properties: the keys whose values read as granted or denied."""
    states = _states(data)
    return Consent("customerlabs", states) if states else None


def _states(value: dict[str, Any]) -> dict[str, bool]:
    states: dict[str, bool] = {}
    for name, given in value.items():
        if isinstance(given, bool):
            states[name] = given
        elif isinstance(given, str) and given.strip().lower() in _YES:
            states[name] = True
        elif isinstance(given, str) and given.strip().lower() in _NO:
            states[name] = False
    return states


def _names(value: object) -> list[str]:
    """Consent ids as RudderStack SDKs send them: a list of strings (or of objects with an
    ``id`` / ``consent`` field), or an object keyed by id."""
    if isinstance(value, dict):
        return [str(key) for key in value]
    if not isinstance(value, list):
        return []
    names = []
    for item in value:
        if isinstance(item, str | int) and not isinstance(item, bool):
            names.append(str(item))
        elif isinstance(item, dict):
            found = item.get("consent", item.get("id"))
            if isinstance(found, str):
                names.append(found)
    return names
