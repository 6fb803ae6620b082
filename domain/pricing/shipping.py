"""Shipping zones and rates: what delivery to a country costs.

A zone groups destination countries; each zone offers rates (methods). Rates
are plain frozen values with `to_dict()` / `from_dict()` so a merchant's
configuration can be stored in events as JSON and replayed unchanged.
Amounts are integer minor units in the shop currency; weights are grams.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from domain.errors import InvalidValue

FLAT = "flat"  # always `amount`
WEIGHT = "weight"  # price of the first bracket that holds the parcel
FREE_OVER = "free_over"  # `amount`, or 0 once the subtotal reaches `free_over`
RATE_KINDS = frozenset({FLAT, WEIGHT, FREE_OVER})


def _non_negative_int(field: str, value: object) -> None:
    if type(value) is not int or value < 0:  # type(): bools and floats are not minor units
        raise InvalidValue(field, f"must be a non-negative integer, got {value!r}", code="shipping.invalid_amount")


def _non_empty_str(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(field, f"{field} must be a non-empty string", code="shipping.invalid_value")


@dataclass(frozen=True, slots=True)
class WeightBracket:
    """Parcels up to and including `up_to_grams` cost `amount`."""

    up_to_grams: int
    amount: int

    def __post_init__(self) -> None:
        _non_negative_int("up_to_grams", self.up_to_grams)
        _non_negative_int("amount", self.amount)

    def to_dict(self) -> dict:
        return {"up_to_grams": self.up_to_grams, "amount": self.amount}

    @classmethod
    def from_dict(cls, data: dict) -> WeightBracket:
        return cls(up_to_grams=data["up_to_grams"], amount=data["amount"])


@dataclass(frozen=True, slots=True)
class ShippingRate:
    id: str
    name: str
    kind: str  # one of RATE_KINDS
    amount: int = 0
    brackets: tuple[WeightBracket, ...] = ()
    free_over: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "brackets", tuple(self.brackets))  # accept lists, stay hashable
        self.validate()

    def validate(self) -> None:
        _non_empty_str("id", self.id)
        _non_empty_str("name", self.name)
        if self.kind not in RATE_KINDS:
            raise InvalidValue("kind", f"unknown rate kind {self.kind!r}", code="shipping.unknown_kind")
        _non_negative_int("amount", self.amount)
        # Brackets or a threshold on a kind that ignores them is a configuration
        # mistake the merchant should hear about, not a silent no-op.
        if (self.kind == WEIGHT) != bool(self.brackets):
            raise InvalidValue(
                "brackets", "only weight rates have brackets, and they must", code="shipping.invalid_brackets"
            )
        limits = [b.up_to_grams for b in self.brackets]
        if limits != sorted(set(limits)):
            raise InvalidValue("brackets", "up_to_grams must strictly increase", code="shipping.invalid_brackets")
        if (self.kind == FREE_OVER) != (self.free_over is not None):
            raise InvalidValue(
                "free_over", "only free_over rates have a threshold, and they must", code="shipping.invalid_threshold"
            )
        if self.free_over is not None:
            _non_negative_int("free_over", self.free_over)

    def price(self, *, subtotal: int, weight_grams: int) -> int | None:
        """What this rate charges, or None if it cannot carry `weight_grams`."""
        _non_negative_int("subtotal", subtotal)
        _non_negative_int("weight_grams", weight_grams)
        if self.kind == WEIGHT:
            return next((b.amount for b in self.brackets if weight_grams <= b.up_to_grams), None)
        if self.kind == FREE_OVER and subtotal >= self.free_over:
            return 0
        return self.amount

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "amount": self.amount,
            "brackets": [b.to_dict() for b in self.brackets],
            "free_over": self.free_over,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ShippingRate:
        return cls(
            id=data["id"],
            name=data["name"],
            kind=data["kind"],
            amount=data.get("amount", 0),
            brackets=tuple(WeightBracket.from_dict(b) for b in data.get("brackets", ())),
            free_over=data.get("free_over"),
        )


@dataclass(frozen=True, slots=True)
class ShippingZone:
    id: str
    name: str
    countries: frozenset[str]  # ISO 3166-1 alpha-2
    rates: tuple[ShippingRate, ...]

    def __post_init__(self) -> None:
        _non_empty_str("id", self.id)
        _non_empty_str("name", self.name)
        if isinstance(self.countries, str):  # frozenset("DE") would be {"D", "E"}
            raise InvalidValue("countries", "expected a set of country codes", code="shipping.invalid_country")
        object.__setattr__(self, "countries", frozenset(self.countries))
        object.__setattr__(self, "rates", tuple(self.rates))
        for c in self.countries:
            if not (isinstance(c, str) and len(c) == 2 and c.isascii() and c.isalpha() and c.isupper()):
                raise InvalidValue("countries", f"{c!r} is not an ISO alpha-2 code", code="shipping.invalid_country")
        ids = [r.id for r in self.rates]
        if len(ids) != len(set(ids)):
            raise InvalidValue("rates", "rate ids must be unique within a zone", code="shipping.duplicate_rate")

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "countries": sorted(self.countries),
            "rates": [r.to_dict() for r in self.rates],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ShippingZone:
        return cls(
            id=data["id"],
            name=data["name"],
            countries=frozenset(data["countries"]),
            rates=tuple(ShippingRate.from_dict(r) for r in data["rates"]),
        )


def validate_zones(zones: Iterable[ShippingZone]) -> None:
    """A country in two zones would make its shipping price ambiguous."""
    seen: dict[str, str] = {}
    for zone in zones:
        for country in zone.countries:
            if country in seen:
                raise InvalidValue(
                    "shipping_zones",
                    f"{country} is in both zone {seen[country]!r} and zone {zone.id!r}",
                    code="shipping.overlapping_zones",
                )
            seen[country] = zone.id


def zone_for(zones: Iterable[ShippingZone], country: str) -> ShippingZone:
    for zone in zones:
        if country in zone.countries:
            return zone
    raise InvalidValue("country", f"no shipping zone serves {country!r}", code="shipping.no_zone")


def quote(zones: Iterable[ShippingZone], country: str, rate_id: str, *, subtotal: int, weight_grams: int) -> int:
    """The price of shipping method `rate_id` to `country`."""
    zone = zone_for(zones, country)
    rate = next((r for r in zone.rates if r.id == rate_id), None)
    if rate is None:
        raise InvalidValue(
            "shipping_method", f"no method {rate_id!r} ships to {country}", code="shipping.unknown_method"
        )
    price = rate.price(subtotal=subtotal, weight_grams=weight_grams)
    if price is None:
        raise InvalidValue(
            "shipping_method", f"{rate_id!r} cannot carry {weight_grams} g", code="shipping.too_heavy"
        )
    return price


def available_rates(
    zones: Iterable[ShippingZone], country: str, *, subtotal: int, weight_grams: int
) -> list[tuple[ShippingRate, int]]:
    """Methods that can ship this order to `country`, with their prices, in zone order."""
    zone = zone_for(zones, country)
    priced = ((rate, rate.price(subtotal=subtotal, weight_grams=weight_grams)) for rate in zone.rates)
    return [(rate, price) for rate, price in priced if price is not None]
