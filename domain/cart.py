"""Cart: lines with the price captured when they were added, an address, a shipping method.

A price change between adding and checking out is never silent: re-pricing is
its own event (`LinePriceChanged`) that the buyer's cart view shows.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import CurrencyMismatch, DomainError, InvalidValue
from domain.personal import PersonalData
from domain.pricing.shipping import quote
from domain.pricing.totals import PricedLine, Totals, compute_totals
from domain.pricing.tax import EU_COUNTRIES

MAX_LINES = 100
MAX_QUANTITY = 999


class CartClosed(DomainError):
    code = "cart.checked_out"

    def __init__(self) -> None:
        super().__init__("this cart has already been checked out")


def _quantity(quantity: int) -> int:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidValue("quantity", f"must be between 1 and {MAX_QUANTITY}", code="cart.invalid_quantity")
    return quantity


class Cart(Aggregate):
    TOPIC = "trafi.cart.v1"

    @event("Created", topic="trafi.cart.created.v1")
    def __init__(
        self, id: UUID, store_id: UUID, currency: str, customer_id: UUID | None, email: PersonalData | None,
        visitor_id: str | None = None,
    ):
        # The storefront's analytics visitor (absent from carts created before it existed): links
        # the cart's orders to the visitor's funnel in the warehouse.
        self.store_id = store_id
        self.visitor_id = visitor_id
        self.currency = currency
        self.customer_id = customer_id
        self.email = email
        self.lines: dict[str, dict] = {}
        self.country: str | None = None
        self.shipping_address: PersonalData | None = None
        self.shipping_method: str | None = None
        self.order_id: UUID | None = None

    @classmethod
    def start(
        cls, id: UUID, *, store_id: UUID, store_currency: str, currency: str,
        customer_id: UUID | None = None, email: PersonalData | None = None, visitor_id: str | None = None,
    ) -> Cart:
        if currency != store_currency:
            raise CurrencyMismatch(store_currency, currency)
        return cls(id=id, store_id=store_id, currency=currency, customer_id=customer_id, email=email,
                   visitor_id=visitor_id)

    @property
    def is_open(self) -> bool:
        return self.order_id is None

    def _check_open(self) -> None:
        if not self.is_open:
            raise CartClosed()

    # --- lines ---------------------------------------------------------------
    def add_item(self, *, product_id: UUID, variant: dict, product_title: str, quantity: int) -> None:
        """Add `quantity` of a variant at its current price (merging into an existing line)."""
        self._check_open()
        _quantity(quantity)
        sku = variant["sku"]
        line = self.lines.get(sku)
        if line is None:
            if len(self.lines) >= MAX_LINES:
                raise InvalidValue("sku", f"a cart holds at most {MAX_LINES} lines", code="cart.too_many_lines")
            self._item_added(
                sku=sku, product_id=product_id, title=f"{product_title} — {variant['title']}",
                quantity=quantity, unit_price=variant["price"], tax_class=variant["tax_class"],
                weight_grams=variant["weight_grams"],
            )
            return
        if line["unit_price"] != variant["price"]:
            self._line_price_changed(sku=sku, old_price=line["unit_price"], new_price=variant["price"])
        self.change_quantity(sku, _quantity(line["quantity"] + quantity))

    @event("ItemAdded", topic="trafi.cart.item_added.v1")
    def _item_added(
        self, sku: str, product_id: UUID, title: str, quantity: int, unit_price: int, tax_class: str, weight_grams: int
    ) -> None:
        self.lines[sku] = {
            "sku": sku, "product_id": product_id, "title": title, "quantity": quantity,
            "unit_price": unit_price, "tax_class": tax_class, "weight_grams": weight_grams,
        }

    def change_quantity(self, sku: str, quantity: int) -> None:
        self._check_open()
        self._line(sku)
        if quantity == 0:
            self.remove_item(sku)
            return
        if self.lines[sku]["quantity"] != _quantity(quantity):
            self._quantity_changed(sku=sku, quantity=quantity)

    @event("QuantityChanged", topic="trafi.cart.quantity_changed.v1")
    def _quantity_changed(self, sku: str, quantity: int) -> None:
        self.lines[sku]["quantity"] = quantity

    def remove_item(self, sku: str) -> None:
        self._check_open()
        self._line(sku)
        self._item_removed(sku=sku)

    @event("ItemRemoved", topic="trafi.cart.item_removed.v1")
    def _item_removed(self, sku: str) -> None:
        del self.lines[sku]

    def _line(self, sku: str) -> dict:
        try:
            return self.lines[sku]
        except KeyError:
            raise InvalidValue("sku", f"{sku} is not in the cart", code="cart.unknown_line") from None

    def reprice(self, current_prices: dict[str, int]) -> list[dict]:
        """Bring every line to its current price; returns the visible changes."""
        self._check_open()
        changes = []
        for sku, line in list(self.lines.items()):
            new_price = current_prices[sku]
            if new_price != line["unit_price"]:
                changes.append({"sku": sku, "old_price": line["unit_price"], "new_price": new_price})
                self._line_price_changed(sku=sku, old_price=line["unit_price"], new_price=new_price)
        return changes

    @event("LinePriceChanged", topic="trafi.cart.line_price_changed.v1")
    def _line_price_changed(self, sku: str, old_price: int, new_price: int) -> None:
        self.lines[sku]["unit_price"] = new_price

    # --- buyer and delivery --------------------------------------------------------
    def identify(self, customer_id: UUID, email: PersonalData) -> None:
        self._check_open()
        if self.customer_id != customer_id or self.email != email:
            self._buyer_identified(customer_id=customer_id, email=email)

    @event("BuyerIdentified", topic="trafi.cart.buyer_identified.v1")
    def _buyer_identified(self, customer_id: UUID, email: PersonalData) -> None:
        self.customer_id = customer_id
        self.email = email

    def set_shipping_address(self, country: str, details: PersonalData | None) -> None:
        self._check_open()
        if country not in EU_COUNTRIES:
            raise InvalidValue("country", f"unknown or unsupported country {country!r}", code="address.unknown_country")
        self._shipping_address_set(country=country, details=details)

    @event("ShippingAddressSet", topic="trafi.cart.shipping_address_set.v1")
    def _shipping_address_set(self, country: str, details: PersonalData | None) -> None:
        if country != self.country:
            self.shipping_method = None  # a rate belongs to a zone; a new country needs a new choice
        self.country = country
        self.shipping_address = details

    def choose_shipping_method(self, rate_id: str, zones: list) -> None:
        self._check_open()
        if self.country is None:
            raise InvalidValue("shipping_method", "set a shipping address first", code="cart.no_shipping_address")
        quote(zones, self.country, rate_id, subtotal=self.subtotal, weight_grams=self.weight_grams)
        self._shipping_method_chosen(rate_id=rate_id)

    @event("ShippingMethodChosen", topic="trafi.cart.shipping_method_chosen.v1")
    def _shipping_method_chosen(self, rate_id: str) -> None:
        self.shipping_method = rate_id

    # --- checkout --------------------------------------------------------------------
    def mark_checked_out(self, order_id: UUID) -> None:
        self._check_open()
        self._checked_out(order_id=order_id)

    @event("CheckedOut", topic="trafi.cart.checked_out.v1")
    def _checked_out(self, order_id: UUID) -> None:
        self.order_id = order_id

    # --- derived -------------------------------------------------------------------
    @property
    def weight_grams(self) -> int:
        return sum(line["weight_grams"] * line["quantity"] for line in self.lines.values())

    @property
    def subtotal(self) -> int:
        return sum(line["unit_price"] * line["quantity"] for line in self.lines.values())

    def totals(self, store) -> Totals:
        """Totals under the store's tax settings; shipping counts once a method is chosen."""
        country = self.country or store.origin_country
        shipping = 0
        if self.country and self.shipping_method:
            shipping = quote(
                store.zones, self.country, self.shipping_method,
                subtotal=self.subtotal, weight_grams=self.weight_grams,
            )
        lines = [
            PricedLine(sku=l["sku"], quantity=l["quantity"], unit_price=l["unit_price"],
                       tax_class=l["tax_class"], weight_grams=l["weight_grams"])
            for l in self.lines.values()
        ]
        return compute_totals(
            lines, currency=self.currency, country=country, prices_include_tax=store.prices_include_tax,
            shipping_amount=shipping, rounding=store.rounding_mode,
        )
