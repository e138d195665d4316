"""The benchmark's event mix: the shares asked for, and anonymous visitors truly anonymous."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bench.events import Mix, generate
from worker.identity import resolve
from worker.normalize import normalize


def kind_of(event: dict) -> str:
    return str(event.get("method") or event.get("type"))


def test_default_mix_is_pages_tracks_identifies_in_both_shapes() -> None:
    counts = Counter(kind_of(e) for e in generate(4000))
    pages = counts["page"] + counts["pageview"]
    tracks = counts["track"] + counts["trackClick"]
    assert 0.50 < pages / 4000 < 0.60 and 0.28 < tracks / 4000 < 0.38
    assert counts["identify"] > 0 and counts["pageview"] > 0 and counts["page"] > 0


def test_mix_weights_and_shapes_are_followed() -> None:
    mix = Mix.parse("track=3,identify=1", "segment")
    counts = Counter(kind_of(e) for e in generate(2000, mix=mix))
    assert set(counts) == {"track", "identify"}
    assert 0.70 < counts["track"] / 2000 < 0.80


@pytest.mark.parametrize("shape", ["customerlabs", "segment"])
def test_anonymous_visitors_carry_no_identifier(shape: str) -> None:
    """An ``anonymous`` event resolves, by email or by id, to its anonymous id only, and
    each visitor has their own."""
    events = [
        normalize(e, received_at=1_772_446_890)
        for e in generate(50, mix=Mix.parse("anonymous=1", shape))
    ]
    for by in ("email", "id"):
        identities = [resolve(e, by, {}) for e in events]
        assert all(i is not None and i.anonymous for i in identities)
        assert len({i.value for i in identities if i}) == 50


@pytest.mark.parametrize(
    ("shares", "shapes", "message"),
    [
        ("page=1,foo=2", "segment", "'foo=2' is not KIND=WEIGHT"),
        ("page", "segment", "'page' is not KIND=WEIGHT"),
        ("page=x", "segment", "weight 'x' of page is not a number"),
        ("page=-1", "segment", "must be 0 or more"),
        ("page=0", "segment", "at least one kind a positive weight"),
        ("page=1", "json", "--shapes"),
    ],
)
def test_bad_mix_is_refused_with_a_reason(shares: str, shapes: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Mix.parse(shares, shapes)


def test_pick_never_chooses_a_zero_weight() -> None:
    mix = Mix.parse("page=0,identify=1,anonymous=0", "segment")
    rng = random.Random(1)
    assert {mix.pick(rng) for _ in range(500)} == {"identify"}
