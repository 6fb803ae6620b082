"""Order lifecycle after checkout: manual payment, fulfilment and tracking, delivery, cancellation, returns.

Every handler changes the order through its methods (the rules live there) and
then lets commands/stock_effects.py apply what those changes mean for stock, in
the same save. Refunds go through the payment service (commands/payments/), which
pays them out through the order's provider.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.stock_effects import settle_stock
from commands.unit_of_work import UnitOfWork
from domain.order import Order

ExternalId = str  # a 3PL's shipment id or a return number: letters, digits, - _ . only


class OrderCommand(Command):
    order_id: UUID

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.order_id]

    def order(self, uow: UnitOfWork) -> Order:
        return uow.get(Order, self.order_id, "order")


def _changed(order: Order, **extra) -> dict:
    return {"order_id": str(order.id), "status": order.status, **extra}


class MarkOrderPaid(OrderCommand):
    amount: int
    reference: str = Field(max_length=200)


def mark_order_paid(cmd: MarkOrderPaid, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.mark_paid(amount=cmd.amount, reference=cmd.reference)
    return _changed(order)


class FulfilOrder(OrderCommand):
    lines: dict[str, int] = Field(max_length=100)  # sku → quantity shipped now
    carrier: str = Field(default="", max_length=100)
    tracking_number: str = Field(default="", max_length=100)
    # A 3PL's own shipment id: posting the same shipment again changes nothing.
    fulfilment_id: str | None = Field(default=None, max_length=100)


def fulfil_order(cmd: FulfilOrder, uow: UnitOfWork) -> dict:
    """Shipping commits the reserved units: they leave on-hand stock for good."""
    order = cmd.order(uow)
    order.fulfil(cmd.lines, carrier=cmd.carrier, tracking_number=cmd.tracking_number, fulfilment_id=cmd.fulfilment_id)
    settle_stock(order, uow)
    return _changed(order, fulfilment_id=cmd.fulfilment_id or list(order.fulfilments)[-1])


class UpdateTracking(OrderCommand):
    fulfilment_id: str = Field(max_length=100)
    carrier: str = Field(max_length=100)
    tracking_number: str = Field(max_length=100)


def update_tracking(cmd: UpdateTracking, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.update_tracking(cmd.fulfilment_id, carrier=cmd.carrier, tracking_number=cmd.tracking_number)
    return _changed(order, fulfilment_id=cmd.fulfilment_id)


class MarkOrderDelivered(OrderCommand):
    pass


def mark_order_delivered(cmd: MarkOrderDelivered, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.mark_delivered()
    return _changed(order)


class CancelOrder(OrderCommand):
    reason: str = Field(default="", max_length=500)


def cancel_order(cmd: CancelOrder, uow: UnitOfWork) -> dict:
    """Cancellation (before fulfilment) gives every reserved unit back and, if money was
    captured, asks for all of it back — in the same save; the payment service pays it out."""
    order = cmd.order(uow)
    order.cancel(cmd.reason)
    refund_id = None
    if order.refundable > 0:
        refund_id = "cancellation"
        order.request_refund(refund_id=refund_id, amount=order.refundable, reason=cmd.reason or "order cancelled")
    settle_stock(order, uow)
    return _changed(order, refund_id=refund_id)


class RefundOrder(OrderCommand):
    """A refund paid out by hand, for an order paid by hand (mark-paid). Orders paid through a
    provider are refunded through the payment service, which pays the money out first."""

    amount: int
    reason: str = Field(default="", max_length=500)
    restock: dict[str, int] = Field(default_factory=dict, max_length=100)


def refund_order(cmd: RefundOrder, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    refund_id = order.refund(cmd.amount, cmd.reason, restock=cmd.restock)
    settle_stock(order, uow)
    return _changed(order, refunded=order.refunded_amount, refund_id=refund_id)


# --- returns -----------------------------------------------------------------------------
class RequestReturn(OrderCommand):
    return_id: str = Field(max_length=100)
    lines: dict[str, int] = Field(max_length=100)
    reason: str = Field(default="", max_length=500)


def request_return(cmd: RequestReturn, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.request_return(return_id=cmd.return_id, lines=cmd.lines, reason=cmd.reason)
    return _returned(order, cmd.return_id)


class AuthoriseReturn(OrderCommand):
    return_id: str = Field(max_length=100)


def authorise_return(cmd: AuthoriseReturn, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.authorise_return(cmd.return_id)
    return _returned(order, cmd.return_id)


class RejectReturn(OrderCommand):
    return_id: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)


def reject_return(cmd: RejectReturn, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.reject_return(cmd.return_id, cmd.reason)
    return _returned(order, cmd.return_id)


class ReceiveReturn(OrderCommand):
    return_id: str = Field(max_length=100)
    restock: bool = True


def receive_return(cmd: ReceiveReturn, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.receive_return(cmd.return_id, restock=cmd.restock)
    settle_stock(order, uow)
    return _returned(order, cmd.return_id)


def _returned(order: Order, return_id: str) -> dict:
    ret = order.returns[return_id]
    return _changed(order, return_id=return_id, return_status=ret["status"], lines=ret["lines"])
