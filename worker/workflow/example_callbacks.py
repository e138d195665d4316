"""Example server-side callbacks, referenced by ``config/workflow.toml``.

A callback takes the event dict (``name``, ``kind``, ``properties``, ``traits``, ``url``,
``timestamp``, ``anonymous_id``) and returns it changed, or None to drop the event.
Copy one into your own package and point the workflow at ``yourpackage.module:function``.
"""

from __future__ import annotations

import math
from typing import Any

# Share of the cart value kept as margin when the event does not say (illustrative).
DEFAULT_MARGIN_RATE = 0.25
# Email domains whose people are staff: their test orders must not reach Customer.io.
INTERNAL_EMAIL_DOMAINS = ("staff.example.com",)


def add_margin(event: dict[str, Any]) -> dict[str, Any]:
    """Add ``cart_value`` and ``margin`` properties computed from the product list."""
    props = event["properties"]
    total = 0.0
    for product in props.get("products") or []:
        if not isinstance(product, dict):
            continue
        # CustomerLabs names product fields product_*, Segment's e-commerce spec does not.
        price = _number(product.get("product_price", product.get("price")))
        quantity = _number(product.get("product_quantity", product.get("quantity")))
        if price is not None:
            total += price * (quantity if quantity is not None else 1)
    rate = _number(props.get("margin_rate"))
    props["cart_value"] = round(total, 2)
    props["margin"] = round(total * (rate if rate is not None else DEFAULT_MARGIN_RATE), 2)
    return event


def drop_internal_users(event: dict[str, Any]) -> dict[str, Any] | None:
    """Drop events from staff (an internal email domain, or ``internal = true``)."""
    for source in (event["traits"], event["properties"]):
        if source.get("internal") is True:
            return None
        email = source.get("email")
        if isinstance(email, str) and email.lower().endswith(
            tuple("@" + d for d in INTERNAL_EMAIL_DOMAINS)
        ):
            return None
    return event


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None
