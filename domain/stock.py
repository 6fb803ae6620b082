"""StockItem: one SKU at one location — on hand, reserved, and who reserved it.

Invariant: available = on_hand − reserved ≥ 0, always. Every command checks it
before triggering an event, and because the item is a versioned aggregate
saved in the same transaction as the order, two checkouts can never both
take the last unit: the second one's save conflicts and is retried against
the new state.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InsufficientStock, InvalidValue


def _positive(field: str, quantity: int) -> int:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise InvalidValue(field, "must be a positive integer", code="stock.invalid_quantity")
    return quantity


class StockItem(Aggregate):
    TOPIC = "trafi.stock_item.v1"

    @event("Created", topic="trafi.stock_item.created.v1")
    def __init__(self, id: UUID, store_id: UUID, sku: str, product_id: UUID, location: str = "default"):
        self.store_id = store_id
        self.sku = sku
        self.product_id = product_id
        self.location = location
        self.on_hand = 0
        self.reserved = 0
        self.reservations: dict[str, int] = {}  # order id → quantity

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def receive(self, quantity: int, reason: str = "received") -> None:
        self._received(quantity=_positive("quantity", quantity), reason=reason)

    @event("Received", topic="trafi.stock_item.received.v1")
    def _received(self, quantity: int, reason: str) -> None:
        self.on_hand += quantity

    def adjust_to(self, on_hand: int, reason: str) -> None:
        """Set the counted quantity (stocktake); it cannot drop below what is reserved."""
        if not isinstance(on_hand, int) or isinstance(on_hand, bool) or on_hand < 0:
            raise InvalidValue("on_hand", "must be a non-negative integer", code="stock.invalid_quantity")
        if on_hand < self.reserved:
            raise InsufficientStock(self.sku, self.reserved, on_hand)
        if on_hand != self.on_hand:
            self._adjusted(on_hand=on_hand, reason=reason)

    @event("Adjusted", topic="trafi.stock_item.adjusted.v1")
    def _adjusted(self, on_hand: int, reason: str) -> None:
        self.on_hand = on_hand

    def reserve(self, order_id: UUID, quantity: int) -> None:
        _positive("quantity", quantity)
        if quantity > self.available:
            raise InsufficientStock(self.sku, quantity, self.available)
        self._reserved(order_id=str(order_id), quantity=quantity)

    @event("Reserved", topic="trafi.stock_item.reserved.v1")
    def _reserved(self, order_id: str, quantity: int) -> None:
        self.reserved += quantity
        self.reservations[order_id] = self.reservations.get(order_id, 0) + quantity

    def release(self, order_id: UUID, quantity: int | None = None) -> None:
        """Give back what an order holds — all of it (cancellation) or `quantity` units (a refund
        of units that will not ship). No-op if it holds nothing."""
        held = self.reservations.get(str(order_id), 0)
        quantity = held if quantity is None else min(_positive("quantity", quantity), held)
        if quantity:
            self._released(order_id=str(order_id), quantity=quantity)

    @event("Released", topic="trafi.stock_item.released.v1")
    def _released(self, order_id: str, quantity: int) -> None:
        self.reserved -= quantity
        remaining = self.reservations.pop(order_id) - quantity
        if remaining:
            self.reservations[order_id] = remaining

    def commit(self, order_id: UUID, quantity: int) -> None:
        """Fulfilment: reserved units leave the building."""
        _positive("quantity", quantity)
        held = self.reservations.get(str(order_id), 0)
        if quantity > held:
            raise InvalidValue("quantity", f"order holds only {held} of {self.sku}", code="stock.not_reserved")
        self._committed(order_id=str(order_id), quantity=quantity)

    @event("Committed", topic="trafi.stock_item.committed.v1")
    def _committed(self, order_id: str, quantity: int) -> None:
        self.on_hand -= quantity
        self.reserved -= quantity
        remaining = self.reservations.pop(order_id) - quantity
        if remaining:
            self.reservations[order_id] = remaining
