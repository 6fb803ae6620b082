"""Orders of the visitors who completed the funnel, with the money of gross profit (schema `orders`)."""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

import numpy as np

from autopilot.simulator.profile import StoreProfile
from autopilot.warehouse.schema import FUNNEL_STEPS

COMPLETE = len(FUNNEL_STEPS) - 1
FREE_SHIPPING_OVER_MINOR = 5000  # orders above this ship free: the store pays the carrier
SHIPPING_COST_MINOR = 450
DISCOUNTED_SHARE = 0.2  # orders with a 10 % code
CHECKOUT_SECONDS = (300, 1800)  # from the visit's first event to the order


def order_id(store_id: str, visitor_id: str, day) -> str:
    return str(uuid5(NAMESPACE_URL, f"trafi-sim:{store_id}:{visitor_id}:{day.isoformat()}"))


def orders_of_day(profile: StoreProfile, visitors, rng: np.random.Generator) -> dict[str, np.ndarray]:
    done = np.flatnonzero(visitors.max_step == COMPLETE)
    n = len(done)
    revenue = np.maximum(100, np.round(profile.order_value_minor * rng.lognormal(0.0, profile.order_value_sigma, n)))
    revenue = revenue.astype(np.int64)
    discount = np.where(rng.random(n) < DISCOUNTED_SHARE, np.round(revenue * 0.1), 0).astype(np.int64)
    cogs = np.round(revenue * profile.cogs_rate * rng.uniform(0.85, 1.15, n)).astype(np.int64)
    gross = np.round(revenue * (1.0 + profile.tax_rate))
    fee = np.round(gross * profile.payment_fee_rate + profile.payment_fee_fixed_minor).astype(np.int64)
    refunded = np.where(rng.random(n) < profile.refund_share, revenue, 0).astype(np.int64)
    seconds = visitors.start_second[done] + rng.integers(*CHECKOUT_SECONDS, size=n)
    placed_at = np.datetime64(visitors.day, "us") + seconds.astype("timedelta64[s]").astype("timedelta64[us]")
    return {
        "store_id": np.full(n, profile.store_id, dtype=object),
        "order_id": np.array([order_id(profile.store_id, v, visitors.day) for v in visitors.visitor_id[done]], dtype=object),
        "visitor_id": visitors.visitor_id[done],
        "placed_at": placed_at,
        "day": np.full(n, np.datetime64(visitors.day, "D")),
        "currency": np.full(n, profile.currency, dtype=object),
        "revenue_minor": revenue,
        "tax_minor": (gross - revenue).astype(np.int64),
        "cogs_minor": cogs,
        "discount_minor": discount,
        "shipping_subsidy_minor": np.where(revenue > FREE_SHIPPING_OVER_MINOR, SHIPPING_COST_MINOR, 0).astype(np.int64),
        "payment_fee_minor": fee,
        "refunded_minor": refunded,
        "paid_at": placed_at,
        "device": visitors.device[done],
        "country": visitors.country[done],
        "traffic_source": visitors.traffic_source[done],
    }
