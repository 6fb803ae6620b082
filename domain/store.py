"""Store: the tenant. Currency, tax mode, origin country and shipping zones."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue
from domain.money import Rounding, check_currency
from domain.pricing.shipping import ShippingZone, validate_zones
from domain.pricing.tax import EU_COUNTRIES


def _check_country(country: str, field: str = "origin_country") -> str:
    if country not in EU_COUNTRIES:
        raise InvalidValue(field, f"unknown or unsupported country {country!r}", code="tax.unknown_country")
    return country


class Store(Aggregate):
    TOPIC = "trafi.store.v1"

    @event("Created", topic="trafi.store.created.v1")
    def __init__(
        self,
        id: UUID,
        slug: str,
        name: str,
        currency: str,
        prices_include_tax: bool,
        origin_country: str,
        rounding: str,
    ):
        self.store_id = id  # a store is its own tenant
        self.slug = slug
        self.name = name
        self.currency = currency
        self.prices_include_tax = prices_include_tax
        self.origin_country = origin_country
        self.rounding = rounding
        self.shipping_zones: list[dict] = []

    @classmethod
    def open(
        cls,
        id: UUID,
        *,
        slug: str,
        name: str,
        currency: str,
        prices_include_tax: bool,
        origin_country: str,
        rounding: Rounding = Rounding.HALF_UP,
    ) -> Store:
        if not name.strip():
            raise InvalidValue("name", "a store needs a name", code="store.invalid_name")
        return cls(
            id=id,
            slug=slug,
            name=name.strip(),
            currency=check_currency(currency),
            prices_include_tax=prices_include_tax,
            origin_country=_check_country(origin_country),
            rounding=Rounding(rounding).value,
        )

    def change_tax_settings(self, *, prices_include_tax: bool, origin_country: str, rounding: Rounding) -> None:
        self._tax_settings_changed(
            prices_include_tax=prices_include_tax,
            origin_country=_check_country(origin_country),
            rounding=Rounding(rounding).value,
        )

    @event("TaxSettingsChanged", topic="trafi.store.tax_settings_changed.v1")
    def _tax_settings_changed(self, prices_include_tax: bool, origin_country: str, rounding: str) -> None:
        self.prices_include_tax = prices_include_tax
        self.origin_country = origin_country
        self.rounding = rounding

    def set_shipping_zones(self, zones: list[ShippingZone]) -> None:
        validate_zones(zones)
        for zone in zones:
            for country in zone.countries:
                _check_country(country, field="shipping_zones")
        self._shipping_zones_set(zones=[z.to_dict() for z in zones])

    @event("ShippingZonesSet", topic="trafi.store.shipping_zones_set.v1")
    def _shipping_zones_set(self, zones: list[dict]) -> None:
        self.shipping_zones = zones

    @property
    def zones(self) -> list[ShippingZone]:
        return [ShippingZone.from_dict(z) for z in self.shipping_zones]

    @property
    def rounding_mode(self) -> Rounding:
        return Rounding(self.rounding)
