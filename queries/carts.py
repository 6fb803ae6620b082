"""Cart view: lines, totals and a shipping estimate (read model `cart_view`).

Totals are priced when the cart is read, by the same pure functions checkout
uses (domain.pricing), under the store's current tax settings and zones — so a
cart with a chosen shipping method shows exactly the total checkout will charge
(unless prices change in between, which checkout re-prices and reports).

Shipping: with a chosen method that still ships to the cart's country, its
price; otherwise the cheapest method that does (an estimate, `chosen=False`),
which is then also what `totals.shipping` and `totals.total` include. A cart
without a country has no estimate and no shipping in its totals, and is taxed
as if delivered in the store's origin country.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from commands.context import StoreContext
from domain.errors import InvalidValue, NotFound
from domain.money import Rounding
from domain.pricing.shipping import ShippingZone, available_rates
from domain.pricing.totals import PricedLine, compute_totals
from projections.read_models.timestamps import from_utc_text
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel


class CartLine(QueryModel):
    sku: str
    product_id: UUID
    title: str
    quantity: int
    unit_price: int
    amount: int  # unit_price × quantity, as priced (net or gross, per the store's tax mode)
    tax: int
    gross: int
    tax_class: str
    weight_grams: int  # of one unit


class CartTotals(QueryModel):
    currency: str
    prices_include_tax: bool
    subtotal: int  # Σ line amounts
    shipping: int  # the chosen method's price, or the estimate's
    tax: int  # lines and shipping
    total: int  # what the buyer pays
    weight_grams: int


class ShippingOption(QueryModel):
    rate_id: str
    name: str
    amount: int


class ShippingEstimate(ShippingOption):
    chosen: bool  # the buyer's choice, not the cheapest-method estimate


class CartDetail(QueryModel):
    cart_id: UUID
    status: str  # "open" or "checked_out"
    order_id: UUID | None
    customer_id: UUID | None
    country: str | None
    shipping_method: str | None  # as chosen by the buyer
    lines: tuple[CartLine, ...]
    totals: CartTotals
    shipping_estimate: ShippingEstimate | None
    shipping_options: tuple[ShippingOption, ...]  # every method shipping to `country`, in the store's order
    updated_at: datetime
    # Playbook flags (docs/autopilot.md), for the visitor the cart was read for (?visitor_id=):
    # before the buyer gives a country, the cheapest shipping to the store's home country
    early_shipping_estimate: ShippingEstimate | None = None
    checkout_mode: str = "account"  # "guest": offer guest checkout first
    trust_badges: bool = False  # show payment trust signals


@dataclass(frozen=True)
class StoreSettings:
    prices_include_tax: bool
    origin_country: str
    rounding: Rounding
    zones: tuple[ShippingZone, ...]


def shipping_options(
    settings: StoreSettings, country: str | None, *, subtotal: int, weight_grams: int
) -> list[ShippingOption]:
    if country is None:
        return []
    try:
        rates = available_rates(settings.zones, country, subtotal=subtotal, weight_grams=weight_grams)
    except InvalidValue:  # no zone serves the country: nothing to offer, not an error to the buyer
        return []
    return [ShippingOption(rate_id=rate.id, name=rate.name, amount=price) for rate, price in rates]


def shipping_estimate(options: list[ShippingOption], chosen: str | None) -> ShippingEstimate | None:
    """The chosen method if it still ships here, else the cheapest (the first one on a tie)."""
    pick = next((o for o in options if o.rate_id == chosen), None)
    if pick is not None:
        return ShippingEstimate(**pick.model_dump(), chosen=True)
    if not options:
        return None
    return ShippingEstimate(**min(options, key=lambda o: o.amount).model_dump(), chosen=False)


@dataclass(frozen=True)
class StoredLine:
    """A cart line as the read model keeps it."""

    sku: str
    product_id: UUID
    title: str
    quantity: int
    unit_price: int
    tax_class: str
    weight_grams: int

    def priced(self) -> PricedLine:
        return PricedLine(
            sku=self.sku, quantity=self.quantity, unit_price=self.unit_price, tax_class=self.tax_class,
            weight_grams=self.weight_grams,
        )


@dataclass(frozen=True)
class PricedCart:
    lines: tuple[CartLine, ...]
    totals: CartTotals
    estimate: ShippingEstimate | None
    options: tuple[ShippingOption, ...]


def price_cart(
    stored: list[StoredLine], settings: StoreSettings, *, currency: str, country: str | None, chosen: str | None
) -> PricedCart:
    """Lines, totals, shipping estimate and options of a cart under its store's settings (pure)."""
    lines = [line.priced() for line in stored]
    subtotal = sum(line.unit_price * line.quantity for line in lines)
    weight = sum(line.weight_grams * line.quantity for line in lines)
    options = shipping_options(settings, country, subtotal=subtotal, weight_grams=weight)
    estimate = shipping_estimate(options, chosen)
    totals = compute_totals(
        lines, currency=currency, country=country or settings.origin_country,
        prices_include_tax=settings.prices_include_tax, shipping_amount=estimate.amount if estimate else 0,
        rounding=settings.rounding,
    )
    return PricedCart(
        lines=tuple(
            CartLine(
                sku=line.sku, product_id=line.product_id, title=line.title, quantity=line.quantity,
                unit_price=line.unit_price, amount=line_total.amount, tax=line_total.tax, gross=line_total.gross,
                tax_class=line.tax_class, weight_grams=line.weight_grams,
            )
            for line, line_total in zip(stored, totals.lines)
        ),
        totals=CartTotals(
            currency=currency, prices_include_tax=settings.prices_include_tax, subtotal=totals.subtotal,
            shipping=totals.shipping, tax=totals.tax, total=totals.total, weight_grams=totals.weight_grams,
        ),
        estimate=estimate,
        options=tuple(options),
    )


def _settings(row: tuple) -> StoreSettings:
    prices_include_tax, origin_country, rounding, zones = row
    return StoreSettings(
        prices_include_tax=bool(prices_include_tax), origin_country=origin_country, rounding=Rounding(rounding),
        zones=tuple(ShippingZone.from_dict(zone) for zone in json.loads(zones)),
    )


class CartQueries(ReadModelQueries):
    projection_name = "cart_view"

    def get_cart(
        self, ctx: StoreContext, cart_id: UUID, *,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S, early_estimate: bool = False,
    ) -> CartDetail:
        """NotFound when there is no such cart in this store."""
        with self.reading(min_position, timeout_s) as tx:
            cart = tx.execute(
                "SELECT c.status, c.order_id, c.customer_id, c.currency, c.country, c.shipping_method, c.updated_at, "
                "s.prices_include_tax, s.origin_country, s.rounding, s.shipping_zones "
                "FROM rm_carts c JOIN rm_cart_stores s ON s.store_id = c.store_id "
                "WHERE c.cart_id = %s AND c.store_id = %s",
                (str(cart_id), str(ctx.store_id)),
            ).fetchone()
            if cart is None:
                raise NotFound("cart", cart_id)
            rows = tx.execute(
                "SELECT sku, product_id, title, quantity, unit_price, tax_class, weight_grams "
                "FROM rm_cart_lines WHERE cart_id = %s ORDER BY line_no",
                (str(cart_id),),
            ).fetchall()
        status, order_id, customer_id, currency, country, shipping_method, updated_at = cart[:7]
        stored = [StoredLine(sku, UUID(product_id), *rest) for sku, product_id, *rest in rows]
        settings = _settings(cart[7:])
        priced = price_cart(stored, settings, currency=currency, country=country, chosen=shipping_method)
        early = None
        if early_estimate and country is None and stored:
            home = shipping_options(settings, settings.origin_country, subtotal=priced.totals.subtotal,
                                    weight_grams=priced.totals.weight_grams)
            early = shipping_estimate(home, None)
        return CartDetail(
            cart_id=cart_id, status=status, order_id=UUID(order_id) if order_id else None,
            customer_id=UUID(customer_id) if customer_id else None, country=country, shipping_method=shipping_method,
            lines=priced.lines, totals=priced.totals, shipping_estimate=priced.estimate,
            shipping_options=priced.options, updated_at=from_utc_text(updated_at), early_shipping_estimate=early,
        )
