"""What an order's new events mean for stock, applied in the same unit of work.

Order commands change the order and then call `settle_stock(order, uow)`: every
event the order gained in this command has its stock consequence here, in one
place, saved in the same transaction — so stock and order can never disagree.

| order event      | stock consequence                                               |
|------------------|-----------------------------------------------------------------|
| Fulfilled        | the shipped units leave on-hand stock (their reservation ends)  |
| Cancelled        | every unit the order still holds is released                    |
| Refunded         | refunded units not shipped are released; shipped ones asked to be restocked come back on hand |
| ReturnReceived   | with restock: the returned units come back on hand              |
"""

from __future__ import annotations

from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.order import Order
from domain.stock import StockItem


def settle_stock(order: Order, uow: UnitOfWork) -> None:
    items = _StockItems(order, uow)
    for event in order.pending_events:
        if isinstance(event, Order.Fulfilled):
            for sku, qty in event.quantities.items():
                items[sku].commit(order.id, qty)
        elif isinstance(event, Order.Cancelled):
            for line in order.lines:
                items[line["sku"]].release(order.id)
        elif isinstance(event, Order.Refunded):
            for sku, qty in (event.released or {}).items():
                items[sku].release(order.id, qty)
            for sku, qty in (event.restocked or {}).items():
                items[sku].receive(qty, reason=f"refund of order {order.id}")
        elif isinstance(event, Order.ReturnReceived) and event.restock:
            for sku, qty in order.returns[event.return_id]["lines"].items():
                items[sku].receive(qty, reason=f"return {event.return_id} of order {order.id}")


class _StockItems:
    """The order's stock items, loaded in one query the first time one is needed."""

    def __init__(self, order: Order, uow: UnitOfWork):
        self._ids = {line["sku"]: ids.stock_item_id(order.store_id, line["sku"]) for line in order.lines}
        self._uow = uow
        self._loaded = False

    def __getitem__(self, sku: str) -> StockItem:
        if not self._loaded:
            self._uow.load(self._ids.values())
            self._loaded = True
        return self._uow.get(StockItem, self._ids[sku], "stock_item")
