"""Catalogue: products, variants, prices, costs, status."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.errors import Conflict, InvalidValue
from domain.product import Product, check_sku
from domain.stock import StockItem
from domain.store import Store


class CreateProduct(Command):
    handle: str = Field(max_length=100)
    title: str = Field(max_length=300)
    description: str = Field(default="", max_length=20_000)
    categories: list[str] = Field(default_factory=list, max_length=50)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ids.product_id(ctx.store_id, self.handle), ctx.store_id]


def create_product(cmd: CreateProduct, uow: UnitOfWork) -> dict:
    product_id = ids.product_id(uow.ctx.store_id, cmd.handle)
    if uow.exists(product_id):
        raise Conflict(f"a product with handle {cmd.handle!r} exists", code="product.exists")
    product = Product.create(
        product_id, store_id=uow.ctx.store_id, handle=cmd.handle, title=cmd.title,
        description=cmd.description, categories=cmd.categories,
    )
    # The first product locks the store's currency (see domain/store.py).
    uow.get(Store, uow.ctx.store_id, "store").note_product_created()
    uow.add(product)
    return {"product_id": str(product_id)}


class ProductCommand(Command):
    product_id: UUID

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.product_id]


class ChangeProductDetails(ProductCommand):
    title: str = Field(max_length=300)
    description: str = Field(default="", max_length=20_000)
    categories: list[str] = Field(default_factory=list, max_length=50)


def change_product_details(cmd: ChangeProductDetails, uow: UnitOfWork) -> dict:
    product = uow.get(Product, cmd.product_id, "product")
    product.change_details(title=cmd.title, description=cmd.description, categories=cmd.categories)
    return {}


class ChangeProductStatus(ProductCommand):
    status: str = Field(max_length=20)


def change_product_status(cmd: ChangeProductStatus, uow: UnitOfWork) -> dict:
    uow.get(Product, cmd.product_id, "product").change_status(cmd.status)
    return {}


class AddVariant(ProductCommand):
    sku: str = Field(max_length=64)
    title: str = Field(default="", max_length=300)
    price: int
    unit_cost: int
    weight_grams: int = 0
    tax_class: str = "standard"
    media_urls: list[str] = Field(default_factory=list, max_length=20)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.product_id, ids.stock_item_id(ctx.store_id, self.sku)]


def add_variant(cmd: AddVariant, uow: UnitOfWork) -> dict:
    """A new variant and its stock item are saved together; a SKU belongs to one product only."""
    product = uow.get(Product, cmd.product_id, "product")
    stock_id = ids.stock_item_id(uow.ctx.store_id, check_sku(cmd.sku))
    if uow.exists(stock_id):
        raise InvalidValue("sku", f"SKU {cmd.sku} is already used in this store", code="product.duplicate_sku")
    product.add_variant(
        sku=cmd.sku, title=cmd.title, price=cmd.price, unit_cost=cmd.unit_cost, weight_grams=cmd.weight_grams,
        tax_class=cmd.tax_class, media_urls=cmd.media_urls,
    )
    uow.add(StockItem(id=stock_id, store_id=uow.ctx.store_id, sku=cmd.sku, product_id=product.id))
    return {"sku": cmd.sku, "stock_item_id": str(stock_id)}


class ChangeVariantPrice(ProductCommand):
    sku: str = Field(max_length=64)
    price: int


def change_variant_price(cmd: ChangeVariantPrice, uow: UnitOfWork) -> dict:
    uow.get(Product, cmd.product_id, "product").change_price(cmd.sku, cmd.price)
    return {}


class ChangeVariantCost(ProductCommand):
    sku: str = Field(max_length=64)
    unit_cost: int


def change_variant_cost(cmd: ChangeVariantCost, uow: UnitOfWork) -> dict:
    uow.get(Product, cmd.product_id, "product").change_unit_cost(cmd.sku, cmd.unit_cost)
    return {}
