"""A realistic event mix for the benchmark: page views, tracks with products, identifies,
in both input shapes (CustomerLabs and Segment-style), about 1 KB each.

``Mix`` chooses other shares (``--mix page=50,track=30,identify=10,anonymous=10``) and
shapes (``--shapes segment``). ``anonymous`` is a page view by a visitor nobody has
identified: the relay sends it alone to ``/api/v1/events``, as Customer.io has no batch
form for anonymous events, so such events cost one request each.

Every event carries a unique message id, so its ULID (what the emulator records) can be
computed here and joined back to the time it was enqueued.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from worker.ids import event_ulid
from worker.normalize.fields import dedupe_key

KINDS = ("page", "track", "identify", "anonymous")
SHAPES = ("customerlabs", "segment")


@dataclass(frozen=True)
class Mix:
    """Shares of each kind of event (any positive weights) and the input shapes, which
    alternate event by event."""

    shares: tuple[tuple[str, float], ...] = (("page", 55.0), ("track", 33.0), ("identify", 12.0))
    shapes: tuple[str, ...] = SHAPES

    @classmethod
    def parse(cls, shares: str, shapes: str) -> Mix:
        """``"page=55,track=33,identify=12"`` and ``"customerlabs,segment"``; ValueError
        names what is wrong."""
        parsed: list[tuple[str, float]] = []
        for part in (p.strip() for p in shares.split(",") if p.strip()):
            kind, sep, weight = part.partition("=")
            if not sep or kind.strip() not in KINDS:
                raise ValueError(f"--mix: {part!r} is not KIND=WEIGHT with KIND one of {KINDS}")
            try:
                value = float(weight)
            except ValueError:
                raise ValueError(f"--mix: weight {weight!r} of {kind} is not a number") from None
            if value < 0 or value != value:
                raise ValueError(f"--mix: weight of {kind} must be 0 or more")
            parsed.append((kind.strip(), value))
        if not parsed or sum(w for _, w in parsed) <= 0:
            raise ValueError("--mix: give at least one kind a positive weight")
        chosen = tuple(s.strip() for s in shapes.split(",") if s.strip())
        if not chosen or any(s not in SHAPES for s in chosen):
            raise ValueError(f"--shapes: choose from {SHAPES}, comma-separated")
        return cls(tuple(parsed), chosen)

    def describe(self) -> dict[str, Any]:
        total = sum(w for _, w in self.shares)
        return {
            "shares_pct": {k: round(100 * w / total, 1) for k, w in self.shares if w},
            "shapes": list(self.shapes),
        }

    def pick(self, rng: random.Random) -> str:
        roll = rng.random() * sum(w for _, w in self.shares)
        for kind, weight in self.shares:
            if roll < weight:
                return kind
            roll -= weight
        return next(k for k, w in reversed(self.shares) if w)


_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Safari/605.1.15"
)
_PATHS = ("/", "/collections/summer", "/products/linen-western-shirt", "/blog/care-guide", "/cart")
_PRODUCTS = (
    ("12069045043288", "Linen Western Shirt", "1500", "Van Heusen", "Men's Collection"),
    ("12069003984984", "Delicious Camisole", "2500.50", "Raymonds", "Women's Collection"),
    ("12069111122233", "Canvas Tote", "799", "Example Co", "Accessories"),
)
_TRACKS = ("Added to cart", "Purchased", "Product viewed")


def _w(value: Any, t: str = "string") -> dict[str, Any]:
    return {"t": t, "v": value}


def _user(rng: random.Random, users: int) -> tuple[int, str]:
    n = rng.randrange(users)
    return n, f"user{n}@example.com"


def _cl_product(p: tuple[str, ...], qty: int) -> dict[str, Any]:
    return {
        "product_id": _w(p[0], "number"),
        "product_name": _w(p[1]),
        "product_price": _w(p[2], "number"),
        "product_quantity": _w(str(qty), "number"),
        "product_brand": _w(p[3]),
        "product_category": _w(p[4]),
        "product_variant": _w("Beige/Blue"),
        "product_sku": _w(f"SKU-{p[0][-6:]}"),
        "product_image_url": _w(f"https://cdn.shop.example.com/p/{p[0]}.jpg"),
    }


def _cl_context(path: str, n: int) -> dict[str, Any]:
    return {
        "page_url": f"https://shop.example.com{path}",
        "referrer": "https://www.google.com/",
        "user_agent": _AGENT,
        "ip": f"203.0.113.{n % 250}",
    }


def customerlabs_event(kind: str, seq: int, rng: random.Random, users: int) -> dict[str, Any]:
    n, email = _user(rng, users)
    path = rng.choice(_PATHS)
    marker = {"identify_by_email": {"t": "string", "v": email, "ib": True}}
    base: dict[str, Any] = {
        "message_id": f"bench-cl-{seq:09d}",
        "customerlabs_user_id": f"cl_{n:010d}",
        "timestamp": 1772446890 + seq % 86_400,
        "context": _cl_context(path, n),
    }
    if kind == "identify":
        traits = {
            "first_name": _w("Ada"),
            "last_name": _w(f"Lovelace {n}"),
            "email": _w(email),
            "phone": _w("+44 20 7946 0958"),
            "city": _w("London"),
            "country": _w("GB"),
            "plan": _w(rng.choice(("free", "pro", "team"))),
            "newsletter": _w("true", "boolean"),
        }
        custom = {
            "user_traits": _w(traits, "Object"),
            **marker,
            "external_ids": _w({"crm_user_id": _w(f"C-{n}")}, "Object"),
        }
        return {**base, "method": "identify", "properties": {"customProperties": custom}}
    if kind in ("page", "anonymous"):
        custom = {
            "page_title": _w("Example Shop: summer linen, tote bags and more"),
            "page_url": _w(f"https://shop.example.com{path}"),
            "referrer_host": _w("www.google.com"),
            "utm_campaign": _w("summer-sale"),
        }
        if kind == "anonymous":  # a visitor never identified: no marker, a fresh cookie
            base["customerlabs_user_id"] = f"cl_visitor_{seq:012d}"
        else:
            custom.update(marker)
        return {**base, "method": "pageview", "properties": {"customProperties": custom}}
    products = [_cl_product(p, rng.randint(1, 3)) for p in rng.sample(_PRODUCTS, 2)]
    custom = {
        "currency": _w("INR"),
        "value": _w(f"{rng.randint(500, 9000)}.50", "number"),
        "clicked_from": _w("product page"),
        **marker,
    }
    return {
        **base,
        "method": "trackClick",
        "event_name": rng.choice(_TRACKS[:2]),
        "properties": {"customProperties": custom, "productProperties": products},
    }


def segment_event(kind: str, seq: int, rng: random.Random, users: int) -> dict[str, Any]:
    n, email = _user(rng, users)
    path = rng.choice(_PATHS)
    url = f"https://shop.example.com{path}"
    context: dict[str, Any] = {
        "library": {"name": "analytics.js", "version": "next-1.64.0"},
        "page": {"path": path, "url": url, "title": "Example Shop", "referrer": ""},
        "userAgent": _AGENT,
        "ip": f"203.0.113.{n % 250}",
        "locale": "en-GB",
        "traits": {"email": email},
    }
    base: dict[str, Any] = {
        "messageId": f"bench-sg-{seq:09d}",
        "anonymousId": f"anon-{n:08d}-5f1c-4e61-9c0a-7d8e9f0a1b2c",
        "userId": f"u_{n}",
        "timestamp": "2026-03-02T10:20:00.512Z",
        "sentAt": "2026-03-02T10:20:00.530Z",
        "integrations": {},
        "context": context,
    }
    if kind == "identify":
        traits = {
            "email": email,
            "first_name": "Ada",
            "last_name": f"Lovelace {n}",
            "plan": rng.choice(("free", "pro", "team")),
            "company": {"name": "Analytical Engines Ltd", "employees": 12},
            "address": {"city": "London", "country": "GB", "postal_code": "EC1A 1BB"},
            "created_at": "2026-01-15T09:00:00Z",
        }
        return {**base, "type": "identify", "traits": traits}
    if kind == "anonymous":  # a visitor never identified: a fresh anonymous id only
        del base["userId"], context["traits"]
        base["anonymousId"] = f"visitor-{seq:012d}"
    if kind in ("page", "anonymous"):
        props = {
            "path": path,
            "url": url,
            "title": "Example Shop: summer linen, tote bags and more",
            "referrer": "https://www.google.com/",
            "search": "?utm_campaign=summer-sale",
        }
        return {**base, "type": "page", "name": "Shop", "properties": props}
    products = [
        {
            "product_id": p[0],
            "sku": f"SKU-{p[0][-6:]}",
            "name": p[1],
            "price": float(p[2]),
            "quantity": rng.randint(1, 3),
            "brand": p[3],
            "category": p[4],
            "image_url": f"https://cdn.shop.example.com/p/{p[0]}.jpg",
        }
        for p in rng.sample(_PRODUCTS, 2)
    ]
    props = {
        "cart_id": f"c-{n:06d}",
        "currency": "GBP",
        "value": round(rng.uniform(10, 300), 2),
        "products": products,
    }
    return {**base, "type": "track", "event": rng.choice(_TRACKS[:2]), "properties": props}


_MAKERS = {"customerlabs": customerlabs_event, "segment": segment_event}


def generate(
    count: int, *, seed: int = 7, users: int = 5000, start: int = 0, mix: Mix = Mix()
) -> Iterator[dict]:
    """``count`` events of the mix, the shapes taking turns, numbered from ``start``."""
    rng = random.Random(seed + start)
    makers = [_MAKERS[shape] for shape in mix.shapes]
    for seq in range(start, start + count):
        kind = mix.pick(rng)
        yield makers[seq % len(makers)](kind, seq, rng, users)


def message_id(event: dict[str, Any]) -> str:
    return str(event.get("message_id") or event.get("messageId"))


def ulid_of(event: dict[str, Any]) -> str:
    """The ULID the relay will send for this event (derived from its message id)."""
    return event_ulid(dedupe_key(message_id(event), event))


WORKFLOW_TOML = """\
default = "off"
page_view_event = "Page viewed"

[events."Create user"]
enabled = true

[events."Page viewed"]
enabled = true

[[events."Page viewed".trigger_paths]]
pattern = "/admin/*"
match = "glob"
action = "dont_fire"

[events."Added to cart"]
enabled = true

[events."Purchased"]
enabled = true
"""
