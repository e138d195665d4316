"""What a sender said about consent, and whether it covers the categories a workflow needs.

Pure: the sender's consent object is read once while normalising (Segment's
``context.consent.categoryPreferences``, RudderStack's ``context.consentManagement``,
CustomerLabs' ``customProperties.consent``); the workflow's ``[consent]`` is weighed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Format = Literal["segment", "rudderstack", "customerlabs"]
State = Literal["granted", "denied", "missing"]
MissingPolicy = Literal["allow", "deny"]

MISSING_POLICIES: tuple[str, ...] = ("allow", "deny")
# Where each format's consent object sits, for the reasons shown in activity.
WHERE = {
    "segment": "context.consent.categoryPreferences",
    "rudderstack": "context.consentManagement",
    "customerlabs": "customProperties.consent",
}


@dataclass(frozen=True, slots=True)
class Consent:
    """One event's consent: category name → granted (True) or denied (False).

    ``others_granted``: a category not listed counts as granted (RudderStack lists only
    what was denied); otherwise it is missing. ``any_category``: one granted category of
    those required is enough (RudderStack's ``resolutionStrategy = "or"``).
    """

    format: Format
    states: Mapping[str, bool] = field(default_factory=dict)
    others_granted: bool = False
    any_category: bool = False

    def state(self, category: str) -> State:
        """Granted, denied, or missing for one category."""
        given = self.states.get(category)
        if given is None:
            return "granted" if self.others_granted else "missing"
        return "granted" if given else "denied"


def refusal(consent: Consent | None, required: Sequence[str], missing: MissingPolicy) -> str | None:
    """Why the event may not be sent (a sentence for activity), or None when it may.

    Each required category must be granted, or missing while ``missing = "allow"``; with
    no consent object at all, every category is missing.
    """
    if not required:
        return None
    where = WHERE[consent.format] if consent is not None else "no consent object"
    verdicts = [(c, consent.state(c) if consent is not None else "missing") for c in required]
    allowed = [s == "granted" or (s == "missing" and missing == "allow") for _, s in verdicts]
    if consent is not None and consent.any_category:
        if any(allowed):
            return None
    elif all(allowed):
        return None
    refused = [f"{c} {s}" for (c, s), ok in zip(verdicts, allowed, strict=True) if not ok]
    return f"consent refused: {', '.join(refused)} ({where}; missing = {missing})"
