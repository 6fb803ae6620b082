"""Store: the tenant. Currency, tax mode, origin country and shipping zones.

The currency may change only until the first product exists: prices are bare
minor units in the store's currency, so changing it later would silently
re-denominate every price, cart and order total.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidValue
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
        self.has_products = False
        self.guardrail_policy: dict | None = None  # the autopilot's profit guardrails, once set

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

    def set_guardrail_policy(self, policy: dict) -> None:
        """The autopilot's profit guardrails (autopilot/guardrails.py GuardrailPolicy, as plain JSON).

        Validated by the caller against GuardrailPolicy; the store keeps the settings, the
        autopilot applies them (before approval, at activation and at every decider tick).
        """
        if policy != self.guardrail_policy:
            self._guardrail_policy_set(policy=dict(policy))

    @event("GuardrailPolicySet", topic="trafi.store.guardrail_policy_set.v1")
    def _guardrail_policy_set(self, policy: dict) -> None:
        self.guardrail_policy = policy

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

    def change_currency(self, currency: str) -> None:
        if self.has_products:
            raise Conflict(
                "the currency cannot change once the store has products (their prices are in it)",
                code="store.currency_locked",
            )
        currency = check_currency(currency)
        if currency != self.currency:
            self._currency_changed(currency=currency)

    @event("CurrencyChanged", topic="trafi.store.currency_changed.v1")
    def _currency_changed(self, currency: str) -> None:
        self.currency = currency

    def note_product_created(self) -> None:
        """Called with every new product; records only the first, which locks the currency.

        On the store's own stream, so that a currency change and a first product
        racing each other conflict on the store's version: one of them sees the other.
        """
        if not self.has_products:
            self._product_catalogue_started()

    @event("ProductCatalogueStarted", topic="trafi.store.product_catalogue_started.v1")
    def _product_catalogue_started(self) -> None:
        self.has_products = True
