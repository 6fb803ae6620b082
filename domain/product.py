"""Product: a catalogue entry with variants (SKU, price, unit cost, weight, tax class, media)."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransition, InvalidValue
from domain.pricing.tax import TaxClass

SKU_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STATUSES = ("draft", "active", "archived")
# Vendure-style table: which status may follow which.
STATUS_TRANSITIONS = {
    "draft": {"active", "archived"},
    "active": {"draft", "archived"},
    "archived": {"draft"},
}


def check_sku(sku: str) -> str:
    if not isinstance(sku, str) or not SKU_PATTERN.match(sku):
        raise InvalidValue("sku", "1-64 letters, digits, '.', '_' or '-'", code="product.invalid_sku")
    return sku


def _check_amount(field: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidValue(field, "must be a non-negative integer of minor units", code=f"product.invalid_{field}")
    return value


class Product(Aggregate):
    TOPIC = "trafi.product.v1"

    class VariantAdded(Aggregate.Event):
        """Version 2 added `media_urls`; version 1 events are upcast with none."""

        TOPIC = "trafi.product.variant_added.v1"
        class_version = 2

        sku: str
        title: str
        price: int
        unit_cost: int
        weight_grams: int
        tax_class: str
        media_urls: list[str]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["media_urls"] = []

    @event("Created", topic="trafi.product.created.v1")
    def __init__(self, id: UUID, store_id: UUID, handle: str, title: str, description: str, categories: list[str]):
        self.store_id = store_id
        self.handle = handle
        self.title = title
        self.description = description
        self.categories = categories
        self.status = "draft"
        self.variants: dict[str, dict] = {}

    @classmethod
    def create(
        cls, id: UUID, *, store_id: UUID, handle: str, title: str, description: str = "", categories: list[str] = ()
    ) -> Product:
        if not re.match(r"^[a-z0-9][a-z0-9-]{0,99}$", handle or ""):
            raise InvalidValue("handle", "lowercase letters, digits and '-'", code="product.invalid_handle")
        if not title.strip():
            raise InvalidValue("title", "a product needs a title", code="product.invalid_title")
        return cls(
            id=id, store_id=store_id, handle=handle, title=title.strip(), description=description,
            categories=sorted({c.strip() for c in categories if c.strip()}),
        )

    # --- details -----------------------------------------------------------------
    def change_details(self, *, title: str, description: str, categories: list[str]) -> None:
        if not title.strip():
            raise InvalidValue("title", "a product needs a title", code="product.invalid_title")
        self._details_changed(
            title=title.strip(), description=description, categories=sorted({c.strip() for c in categories if c.strip()})
        )

    @event("DetailsChanged", topic="trafi.product.details_changed.v1")
    def _details_changed(self, title: str, description: str, categories: list[str]) -> None:
        self.title, self.description, self.categories = title, description, categories

    def change_status(self, status: str) -> None:
        if status not in STATUSES:
            raise InvalidValue("status", f"one of {', '.join(STATUSES)}", code="product.invalid_status")
        if status == self.status:
            return
        if status not in STATUS_TRANSITIONS[self.status]:
            raise InvalidTransition("product", self.status, status)
        if status == "active" and not self.variants:
            raise InvalidValue("status", "a product needs a variant before it can be sold", code="product.no_variants")
        self._status_changed(status=status)

    @event("StatusChanged", topic="trafi.product.status_changed.v1")
    def _status_changed(self, status: str) -> None:
        self.status = status

    # --- variants ----------------------------------------------------------------
    def add_variant(
        self, *, sku: str, title: str, price: int, unit_cost: int, weight_grams: int = 0,
        tax_class: str = TaxClass.STANDARD.value, media_urls: list[str] = (),
    ) -> None:
        check_sku(sku)
        if sku in self.variants:
            raise InvalidValue("sku", f"variant {sku} already exists", code="product.duplicate_sku")
        try:
            tax_class = TaxClass(tax_class).value
        except ValueError:
            raise InvalidValue("tax_class", f"unknown tax class {tax_class!r}", code="tax.unknown_class") from None
        for url in media_urls:
            if not re.match(r"^https?://\S+$", url):
                raise InvalidValue("media_urls", f"not an http(s) URL: {url!r}", code="product.invalid_media_url")
        self._variant_added(
            sku=sku, title=title.strip() or sku, price=_check_amount("price", price),
            unit_cost=_check_amount("unit_cost", unit_cost), weight_grams=_check_amount("weight_grams", weight_grams),
            tax_class=tax_class, media_urls=list(media_urls),
        )

    @event(VariantAdded)
    def _variant_added(
        self, sku: str, title: str, price: int, unit_cost: int, weight_grams: int, tax_class: str, media_urls: list[str]
    ) -> None:
        self.variants[sku] = {
            "sku": sku, "title": title, "price": price, "unit_cost": unit_cost,
            "weight_grams": weight_grams, "tax_class": tax_class, "media_urls": media_urls,
        }

    def variant(self, sku: str) -> dict:
        try:
            return self.variants[sku]
        except KeyError:
            raise InvalidValue("sku", f"unknown SKU {sku}", code="product.unknown_sku") from None

    def change_price(self, sku: str, price: int) -> None:
        if self.variant(sku)["price"] != _check_amount("price", price):
            self._price_changed(sku=sku, price=price)

    @event("PriceChanged", topic="trafi.product.price_changed.v1")
    def _price_changed(self, sku: str, price: int) -> None:
        self.variants[sku]["price"] = price

    def change_unit_cost(self, sku: str, unit_cost: int) -> None:
        if self.variant(sku)["unit_cost"] != _check_amount("unit_cost", unit_cost):
            self._unit_cost_changed(sku=sku, unit_cost=unit_cost)

    @event("UnitCostChanged", topic="trafi.product.unit_cost_changed.v1")
    def _unit_cost_changed(self, sku: str, unit_cost: int) -> None:
        self.variants[sku]["unit_cost"] = unit_cost

    @property
    def sellable(self) -> bool:
        return self.status == "active"
