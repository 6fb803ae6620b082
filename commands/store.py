"""Store settings: open a store, tax mode, shipping zones."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.errors import Conflict, InvalidValue
from domain.money import Rounding
from domain.pricing.shipping import ShippingZone
from domain.store import Store


class OpenStore(Command):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(max_length=200)
    currency: str = Field(max_length=3)
    prices_include_tax: bool = True
    origin_country: str = Field(max_length=2)
    rounding: Rounding = Rounding.HALF_UP

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ids.store_id(self.slug)]


def open_store(cmd: OpenStore, uow: UnitOfWork) -> dict:
    store_id = ids.store_id(cmd.slug)
    if store_id != uow.ctx.store_id:
        raise InvalidValue("slug", "the context is not this store's", code="store.context_mismatch")
    if uow.exists(store_id):
        raise Conflict(f"store {cmd.slug} already exists", code="store.exists")
    uow.add(Store.open(
        store_id, slug=cmd.slug, name=cmd.name, currency=cmd.currency,
        prices_include_tax=cmd.prices_include_tax, origin_country=cmd.origin_country, rounding=cmd.rounding,
    ))
    return {"store_id": str(store_id)}


class ChangeTaxSettings(Command):
    prices_include_tax: bool
    origin_country: str = Field(max_length=2)
    rounding: Rounding = Rounding.HALF_UP

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ctx.store_id]


def change_tax_settings(cmd: ChangeTaxSettings, uow: UnitOfWork) -> dict:
    store = uow.get(Store, uow.ctx.store_id, "store")
    store.change_tax_settings(
        prices_include_tax=cmd.prices_include_tax, origin_country=cmd.origin_country, rounding=cmd.rounding
    )
    return {}


class SetShippingZones(Command):
    zones: list[dict] = Field(max_length=100)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ctx.store_id]


def set_shipping_zones(cmd: SetShippingZones, uow: UnitOfWork) -> dict:
    store = uow.get(Store, uow.ctx.store_id, "store")
    try:
        zones = [ShippingZone.from_dict(z) for z in cmd.zones]
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidValue("shipping_zones", f"malformed zone: {error}", code="shipping.invalid_zone") from None
    store.set_shipping_zones(zones)
    return {}


class ChangeStoreCurrency(Command):
    currency: str = Field(max_length=3)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ctx.store_id]


def change_store_currency(cmd: ChangeStoreCurrency, uow: UnitOfWork) -> dict:
    store = uow.get(Store, uow.ctx.store_id, "store")
    store.change_currency(cmd.currency)
    return {"currency": store.currency}
