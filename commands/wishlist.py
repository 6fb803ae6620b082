"""Wishlist commands: keep a variant for later, drop it, or move it into a cart."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.cart import Cart
from domain.customer import Customer
from domain.errors import InvalidValue
from domain.product import Product
from domain.wishlist import Wishlist


class WishlistCommand(Command):
    customer_id: UUID

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.customer_id, ids.wishlist_id(ctx.store_id, self.customer_id)]

    def wishlist(self, uow: UnitOfWork) -> Wishlist | None:
        """The customer's wishlist, None if nothing was ever added; NotFound for no such customer here."""
        uow.get(Customer, self.customer_id, "customer")
        return uow.find(Wishlist, ids.wishlist_id(uow.ctx.store_id, self.customer_id))

    def existing_wishlist(self, uow: UnitOfWork, sku: str) -> Wishlist:
        wishlist = self.wishlist(uow)
        if wishlist is None:
            raise InvalidValue("sku", f"{sku} is not on the wishlist", code="wishlist.unknown_item")
        return wishlist


class AddToWishlist(WishlistCommand):
    product_id: UUID
    sku: str = Field(max_length=64)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [*super().aggregate_ids(ctx), self.product_id]


def add_to_wishlist(cmd: AddToWishlist, uow: UnitOfWork) -> dict:
    wishlist = cmd.wishlist(uow)
    product = uow.find(Product, cmd.product_id)
    if product is None:
        raise InvalidValue("product_id", "no such product", code="wishlist.unknown_product")
    product.variant(cmd.sku)
    if wishlist is None:
        wishlist = Wishlist.start(
            ids.wishlist_id(uow.ctx.store_id, cmd.customer_id), store_id=uow.ctx.store_id, customer_id=cmd.customer_id
        )
        uow.add(wishlist)
    added = wishlist.add(product_id=product.id, sku=cmd.sku)
    return {"wishlist_id": str(wishlist.id), "sku": cmd.sku, "added": added, "item_count": len(wishlist.items)}


class RemoveFromWishlist(WishlistCommand):
    sku: str = Field(max_length=64)


def remove_from_wishlist(cmd: RemoveFromWishlist, uow: UnitOfWork) -> dict:
    wishlist = cmd.existing_wishlist(uow, cmd.sku)
    wishlist.remove(cmd.sku)
    return {"wishlist_id": str(wishlist.id), "item_count": len(wishlist.items)}


class MoveWishlistItemToCart(WishlistCommand):
    """Off the wishlist and into a cart, in one save: never on both, never on neither."""

    sku: str = Field(max_length=64)
    cart_id: UUID
    quantity: int = 1

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [*super().aggregate_ids(ctx), self.cart_id]


def move_wishlist_item_to_cart(cmd: MoveWishlistItemToCart, uow: UnitOfWork) -> dict:
    wishlist = cmd.existing_wishlist(uow, cmd.sku)
    item = wishlist.item(cmd.sku)
    cart = uow.get(Cart, cmd.cart_id, "cart")
    if cart.customer_id not in (None, cmd.customer_id):
        raise InvalidValue("cart_id", "this cart belongs to another buyer", code="wishlist.foreign_cart")
    product = uow.find(Product, item["product_id"])
    if product is None or not product.sellable or cmd.sku not in product.variants:
        raise InvalidValue("sku", f"{cmd.sku} is no longer for sale", code="cart.unavailable_product")
    cart.add_item(
        product_id=product.id, variant=product.variants[cmd.sku], product_title=product.title, quantity=cmd.quantity
    )
    wishlist.remove(cmd.sku)
    return {
        "cart_id": str(cart.id), "sku": cmd.sku, "quantity": cart.lines[cmd.sku]["quantity"],
        "wishlist_item_count": len(wishlist.items),
    }
