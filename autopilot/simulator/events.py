"""Storefront events of a simulated day, shaped as POST /v1/events takes them (autopilot/telemetry/schemas.py).

A visitor's day is one session: a page view (carrying where the visit came from), then one
event per funnel step reached, a few seconds to minutes apart. Traffic sources with a dot in
their name arrive by referrer (google.com), the others by `utm_source`, "direct" by neither —
the same source the ingestion derives (schemas.traffic_source).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Iterator

import numpy as np

from autopilot.simulator.profile import StoreProfile


def _host(profile: StoreProfile) -> str:
    return f"shop-{profile.store_id[:8]}.example"


def _arrival(profile: StoreProfile, source: str) -> dict:
    url = f"https://{_host(profile)}/"
    if source == "direct":
        return {"url": url}
    if "." in source:
        return {"url": url, "referrer": f"https://www.{source}/"}
    return {"url": f"{url}?utm_source={source}", "utm_source": source}


def events_of_day(profile: StoreProfile, visitors, orders: dict, rng: np.random.Generator) -> Iterator[dict]:
    """The day's events in time order; each carries its moment as `_at` (a datetime) besides `occurred_at`."""
    midnight = datetime.combine(visitors.day, time(), timezone.utc)
    products = profile.products
    order_of = dict(zip(orders["visitor_id"], zip(orders["order_id"], orders["revenue_minor"], orders["tax_minor"])))
    gaps = rng.integers(5, 240, size=(len(visitors), 6))
    picks = rng.integers(0, len(products), size=len(visitors))
    quantities = rng.integers(1, 3, size=len(visitors))
    events = []
    for row in range(len(visitors)):
        visitor_id = visitors.visitor_id[row]
        session_id = f"s-{visitors.day.toordinal()}-{visitor_id}"
        common = {"store_id": profile.store_id, "session_id": session_id, "visitor_id": visitor_id,
                  "device": visitors.device[row], "country": visitors.country[row]}
        at = midnight + timedelta(seconds=int(visitors.start_second[row]))
        product = products[picks[row]]
        steps = [{"type": "page_view", **_arrival(profile, visitors.traffic_source[row])},
                 {"type": "product_view", "product_id": product.product_id, "sku": product.sku},
                 {"type": "add_to_cart", "product_id": product.product_id, "sku": product.sku,
                  "quantity": int(quantities[row]), "price": product.price_minor, "currency": profile.currency},
                 {"type": "checkout_start"},
                 {"type": "checkout_step", "step": "shipping"},
                 {"type": "checkout_step", "step": "payment"}]
        if visitor_id in order_of:
            order, revenue, tax = order_of[visitor_id]
            steps.append({"type": "checkout_complete", "order_id": order, "value": int(revenue + tax),
                          "currency": profile.currency})
        for index, body in enumerate(steps[:int(visitors.max_step[row]) + 1]):
            if index:
                at += timedelta(seconds=int(gaps[row, index - 1]))
            events.append({"event_id": f"{session_id}-{index}", "occurred_at": at.isoformat(), "_at": at,
                           **common, **body})
    events.sort(key=lambda e: e["_at"])
    return iter(events)
