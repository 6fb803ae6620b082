"""Wishlist: the variants a customer keeps for later, one list per customer.

Its id is derived from the store and the customer (domain.ids.wishlist_id), so
there is nothing to look up: the first item added creates it.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidValue

MAX_ITEMS = 200


class Wishlist(Aggregate):
    TOPIC = "trafi.wishlist.v1"

    @event("Created", topic="trafi.wishlist.created.v1")
    def __init__(self, id: UUID, store_id: UUID, customer_id: UUID):
        self.store_id = store_id
        self.customer_id = customer_id
        self.items: dict[str, dict] = {}  # sku → {"product_id", "sku"}, in the order added

    @classmethod
    def start(cls, id: UUID, *, store_id: UUID, customer_id: UUID) -> Wishlist:
        return cls(id=id, store_id=store_id, customer_id=customer_id)

    def add(self, *, product_id: UUID, sku: str) -> bool:
        """Keep a variant; False when it is already on the list (wishing twice changes nothing)."""
        if sku in self.items:
            return False
        if len(self.items) >= MAX_ITEMS:
            raise InvalidValue("sku", f"a wishlist holds at most {MAX_ITEMS} items", code="wishlist.full")
        self._item_added(product_id=product_id, sku=sku)
        return True

    @event("ItemAdded", topic="trafi.wishlist.item_added.v1")
    def _item_added(self, product_id: UUID, sku: str) -> None:
        self.items[sku] = {"product_id": product_id, "sku": sku}

    def item(self, sku: str) -> dict:
        try:
            return self.items[sku]
        except KeyError:
            raise InvalidValue("sku", f"{sku} is not on the wishlist", code="wishlist.unknown_item") from None

    def remove(self, sku: str) -> None:
        self.item(sku)
        self._item_removed(sku=sku)

    @event("ItemRemoved", topic="trafi.wishlist.item_removed.v1")
    def _item_removed(self, sku: str) -> None:
        del self.items[sku]
