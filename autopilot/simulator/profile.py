"""What a simulated store looks like: traffic, segment mix, funnel rates — and the problems planted in it.

Funnel rates are per step *left*: `rates["shipping"]` is the share of visitors at the shipping
step who go on to payment (the same convention as the diagnosis and the reference file).
Effects and problems multiply a step's rate for the visitors of a segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from uuid import UUID, uuid5

from autopilot.warehouse.schema import FUNNEL_STEPS

TRANSITION_STEPS = FUNNEL_STEPS[:-1]
SEGMENT_DIMENSIONS = ("device", "country", "traffic_source", "visitor_type")
SIMULATOR_NAMESPACE = UUID("0d5c2f4e-7a1b-4c8d-9e3f-5a6b7c8d9e0f")

DEFAULT_RATES = {
    "visit": 0.60, "product_view": 0.16, "add_to_cart": 0.50,
    "checkout_start": 0.80, "shipping": 0.82, "payment": 0.88,
}


@dataclass(frozen=True)
class Effect:
    """A standing difference: visitors with `dimension` = `value` convert `multiplier` × at `step`."""

    dimension: str
    value: str
    step: str
    multiplier: float


DEFAULT_EFFECTS = (
    Effect("device", "mobile", "product_view", 0.85),
    Effect("device", "mobile", "checkout_start", 0.93),
    Effect("device", "tablet", "product_view", 0.95),
    Effect("visitor_type", "returning", "product_view", 1.30),
    Effect("visitor_type", "returning", "add_to_cart", 1.10),
    Effect("traffic_source", "newsletter", "visit", 1.20),
    Effect("traffic_source", "facebook", "visit", 0.85),
    Effect("traffic_source", "instagram", "visit", 0.85),
)


@dataclass(frozen=True)
class PlantedProblem:
    """From `start` (until `end`, inclusive, if given), the segment's conversion at `step` is × `multiplier`.

    `segment` is {dimension: value} over device, country, traffic_source, visitor_type;
    empty means every visitor.
    """

    step: str
    segment: dict
    multiplier: float
    start: date
    end: date | None = None

    def __post_init__(self) -> None:
        if self.step not in TRANSITION_STEPS:
            raise ValueError(f"step must be one of {TRANSITION_STEPS}")
        unknown = set(self.segment) - set(SEGMENT_DIMENSIONS)
        if unknown:
            raise ValueError(f"unknown segment dimension(s) {sorted(unknown)}")
        if self.multiplier < 0:
            raise ValueError("multiplier must not be negative")

    def active_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Product:
    product_id: str
    sku: str
    price_minor: int


def default_catalogue(store_id: str, size: int = 8) -> tuple[Product, ...]:
    prices = (1890, 2490, 3490, 4500, 5900, 7900, 12900, 1490, 990, 2990)
    return tuple(Product(str(uuid5(SIMULATOR_NAMESPACE, f"{store_id}:product:{i}")), f"SIM-{i + 1:03d}",
                         prices[i % len(prices)]) for i in range(size))


@dataclass(frozen=True)
class StoreProfile:
    store_id: str
    visitors_per_day: float = 2500.0
    weekend_factor: float = 1.15  # Saturdays and Sundays
    returning_share: float = 0.30
    devices: dict = field(default_factory=lambda: {"desktop": 0.42, "mobile": 0.50, "tablet": 0.08})
    countries: dict = field(default_factory=lambda: {"DE": 0.40, "FR": 0.20, "NL": 0.15, "IT": 0.15, "ES": 0.10})
    sources: dict = field(default_factory=lambda: {
        "direct": 0.25, "google.com": 0.40, "facebook": 0.15, "instagram": 0.10, "newsletter": 0.10})
    rates: dict = field(default_factory=lambda: dict(DEFAULT_RATES))
    effects: tuple[Effect, ...] = DEFAULT_EFFECTS
    problems: tuple[PlantedProblem, ...] = ()
    daily_rate_cv: float = 0.03  # every step's rate wobbles from day to day by about this much (relative)
    currency: str = "EUR"
    order_value_minor: int = 6500  # median order revenue, net of tax
    order_value_sigma: float = 0.5  # lognormal spread of order values
    cogs_rate: float = 0.45
    tax_rate: float = 0.19
    payment_fee_rate: float = 0.015
    payment_fee_fixed_minor: int = 25
    refund_share: float = 0.03
    catalogue: tuple[Product, ...] | None = None

    def __post_init__(self) -> None:
        if set(self.rates) != set(TRANSITION_STEPS):
            raise ValueError(f"rates must name exactly {TRANSITION_STEPS}")
        if not all(0.0 <= r <= 1.0 for r in self.rates.values()):
            raise ValueError("rates are probabilities")
        for name in ("devices", "countries", "sources"):
            if abs(sum(getattr(self, name).values()) - 1.0) > 1e-6:
                raise ValueError(f"{name} shares must sum to 1")
        if not 0.0 <= self.returning_share < 1.0:
            raise ValueError("returning_share must be in [0, 1)")

    @property
    def products(self) -> tuple[Product, ...]:
        return self.catalogue or default_catalogue(self.store_id)
