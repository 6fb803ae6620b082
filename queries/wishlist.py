"""A customer's wishlist, read from the write side.

No read model: a wishlist is small (at most 200 items), belongs to one customer
and is always read by its id, so loading the aggregate costs one indexed query —
and the shopper who just tapped "save for later" sees the item at once, with no
projection to wait for.
"""

from __future__ import annotations

from uuid import UUID

from commands.application import TrafiApplication
from commands.context import StoreContext
from domain import ids
from domain.customer import Customer
from domain.errors import NotFound
from domain.wishlist import Wishlist
from queries.model import QueryModel


class WishlistItem(QueryModel):
    product_id: UUID
    sku: str


class WishlistView(QueryModel):
    customer_id: UUID
    items: tuple[WishlistItem, ...]  # oldest first, in the order added


class WishlistQueries:
    def __init__(self, app: TrafiApplication):
        self.app = app

    def get_wishlist(self, ctx: StoreContext, customer_id: UUID) -> WishlistView:
        """Empty until something is added; NotFound when the customer is not this store's."""
        wishlist_id = ids.wishlist_id(ctx.store_id, customer_id)
        found, _ = self.app.load_many([customer_id, wishlist_id])
        customer = found.get(customer_id)
        if not isinstance(customer, Customer) or customer.store_id != ctx.store_id:
            raise NotFound("customer", customer_id)
        wishlist = found.get(wishlist_id)
        items = wishlist.items.values() if isinstance(wishlist, Wishlist) and wishlist.store_id == ctx.store_id else ()
        return WishlistView(
            customer_id=customer_id,
            items=tuple(WishlistItem(product_id=item["product_id"], sku=item["sku"]) for item in items),
        )
