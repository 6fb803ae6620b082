"""Order lifecycle after checkout: payment, fulfilment, delivery, cancellation, refunds."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.order import Order
from domain.stock import StockItem


class OrderCommand(Command):
    order_id: UUID

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.order_id]

    def order(self, uow: UnitOfWork) -> Order:
        return uow.get(Order, self.order_id, "order")


def _stock_items(order: Order, uow: UnitOfWork) -> dict[str, StockItem]:
    stock_ids = {l["sku"]: ids.stock_item_id(order.store_id, l["sku"]) for l in order.lines}
    uow.load(stock_ids.values())
    return {sku: uow.get(StockItem, stock_id, "stock_item") for sku, stock_id in stock_ids.items()}


class MarkOrderPaid(OrderCommand):
    amount: int
    reference: str = Field(max_length=200)


def mark_order_paid(cmd: MarkOrderPaid, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.mark_paid(amount=cmd.amount, reference=cmd.reference)
    return {"order_id": str(order.id), "status": order.status}


class FulfilOrder(OrderCommand):
    lines: dict[str, int] = Field(max_length=100)  # sku → quantity shipped now
    carrier: str = Field(default="", max_length=100)
    tracking_number: str = Field(default="", max_length=100)


def fulfil_order(cmd: FulfilOrder, uow: UnitOfWork) -> dict:
    """Shipping commits the reserved units: they leave on-hand stock for good."""
    order = cmd.order(uow)
    order.fulfil(cmd.lines, carrier=cmd.carrier, tracking_number=cmd.tracking_number)
    items = _stock_items(order, uow)
    for sku, quantity in cmd.lines.items():
        items[sku].commit(order.id, quantity)
    return {"order_id": str(order.id), "status": order.status}


class MarkOrderDelivered(OrderCommand):
    pass


def mark_order_delivered(cmd: MarkOrderDelivered, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.mark_delivered()
    return {"order_id": str(order.id), "status": order.status}


class CancelOrder(OrderCommand):
    reason: str = Field(default="", max_length=500)


def cancel_order(cmd: CancelOrder, uow: UnitOfWork) -> dict:
    """Cancellation (before fulfilment) gives every reserved unit back, in the same save."""
    order = cmd.order(uow)
    order.cancel(cmd.reason)
    for item in _stock_items(order, uow).values():
        item.release(order.id)
    return {"order_id": str(order.id), "status": order.status}


class RefundOrder(OrderCommand):
    amount: int
    reason: str = Field(default="", max_length=500)


def refund_order(cmd: RefundOrder, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.refund(cmd.amount, cmd.reason)
    return {"order_id": str(order.id), "status": order.status, "refunded": order.refunded_amount}
