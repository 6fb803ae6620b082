"""A store's settings: name, currency, tax mode, rounding and shipping zones.

Read from the write side — the Store aggregate, one primary-key read — not from a
read model: the settings are one small aggregate, and a merchant who has just
changed them must see the change on the very next read.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from commands.application import TrafiApplication
from commands.context import StoreContext
from domain.errors import NotFound
from domain.store import Store
from queries.model import QueryModel


class WeightBracketView(QueryModel):
    up_to_grams: int
    amount: int


class ShippingRateView(QueryModel):
    id: str
    name: str
    kind: str  # flat | weight | free_over
    amount: int  # flat and free_over rates: the price (minor units)
    brackets: tuple[WeightBracketView, ...]  # weight rates only
    free_over: int | None  # free_over rates only: the subtotal from which shipping is free


class ShippingZoneView(QueryModel):
    id: str
    name: str
    countries: tuple[str, ...]
    rates: tuple[ShippingRateView, ...]


class StoreSettings(QueryModel):
    store_id: UUID
    slug: str
    name: str
    currency: str
    currency_locked: bool  # true once the store has a product: the currency can no longer change
    prices_include_tax: bool
    origin_country: str
    rounding: str  # half_up | half_even
    shipping_zones: tuple[ShippingZoneView, ...]
    version: int
    updated_at: datetime


class StoreSettingsQueries:
    def __init__(self, app: TrafiApplication):
        self.app = app

    def settings(self, ctx: StoreContext, *, min_position: int | None = None) -> StoreSettings:
        """The store of `ctx`. `min_position` is accepted like on every query; the write side never lags."""
        found, _ = self.app.load_many([ctx.store_id])
        store = found.get(ctx.store_id)
        if not isinstance(store, Store):
            raise NotFound("store", ctx.store_id)
        return StoreSettings(
            store_id=store.id, slug=store.slug, name=store.name, currency=store.currency,
            currency_locked=store.has_products, prices_include_tax=store.prices_include_tax,
            origin_country=store.origin_country, rounding=store.rounding,
            shipping_zones=tuple(ShippingZoneView.model_validate(zone.to_dict()) for zone in store.zones),
            version=store.version, updated_at=store.modified_on,
        )
