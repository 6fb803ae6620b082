"""An order as its buyer sees it, opened with the order token from checkout.

Read from the write side (one primary-key read), not a read model: the buyer looks
at the order right after placing it, and the token to check lives on the aggregate.
A wrong token and a missing order are the same answer, so a token cannot be used to
learn which order ids exist.
"""

from __future__ import annotations

import hmac
from uuid import UUID

from commands.application import TrafiApplication
from commands.context import StoreContext
from domain.errors import NotFound
from domain.order import Order
from domain.tokens import token_hash
from queries.model import QueryModel


class BuyerOrderLine(QueryModel):
    sku: str
    title: str
    quantity: int
    unit_price: int
    amount: int
    tax: int
    gross: int


class Shipment(QueryModel):
    fulfilment_id: str
    lines: dict[str, int]
    carrier: str
    tracking_number: str


class BuyerReturn(QueryModel):
    return_id: str
    lines: dict[str, int]
    status: str  # requested, authorised, received, refunded or rejected


class BuyerOrder(QueryModel):
    order_id: UUID
    status: str
    currency: str
    lines: tuple[BuyerOrderLine, ...]
    subtotal: int
    shipping: int
    tax: int
    total: int
    paid_amount: int
    refunded_amount: int
    country: str | None
    shipping_method: str | None
    payment_status: str | None = None  # the latest payment attempt's status; None before paying starts
    shipments: tuple[Shipment, ...] = ()
    returns: tuple[BuyerReturn, ...] = ()


def _lines(order: Order) -> tuple[BuyerOrderLine, ...]:
    titles = {line["sku"]: line.get("title") or line["sku"] for line in order.lines}
    return tuple(
        BuyerOrderLine(sku=t["sku"], title=titles.get(t["sku"], t["sku"]), quantity=t["quantity"],
                       unit_price=t["unit_price"], amount=t["amount"], tax=t["tax"], gross=t["gross"])
        for t in order.totals["lines"]
    )


class BuyerOrderQueries:
    def __init__(self, app: TrafiApplication):
        self.app = app

    def buyer_order(self, ctx: StoreContext, order_id: UUID, order_token: str) -> Order:
        """The order, if the token opens it; otherwise not found (the same answer as no order)."""
        found, _ = self.app.load_many([order_id])
        order = found.get(order_id)
        if (not isinstance(order, Order) or order.store_id != ctx.store_id
                or not hmac.compare_digest(order.token_hash, token_hash(order_token))):
            raise NotFound("order", order_id)
        return order

    def order_status(self, ctx: StoreContext, order_id: UUID, order_token: str) -> BuyerOrder:
        order = self.buyer_order(ctx, order_id, order_token)
        totals = order.totals
        return BuyerOrder(
            order_id=order.id, status=order.status, currency=order.currency, lines=_lines(order),
            subtotal=totals["subtotal"], shipping=totals["shipping"], tax=totals["tax"], total=totals["total"],
            paid_amount=order.paid_amount, refunded_amount=order.refunded_amount, country=order.country,
            shipping_method=order.shipping_method,
            payment_status=order.payments[-1]["status"] if order.payments else None,
            shipments=tuple(Shipment(fulfilment_id=key, **shipment) for key, shipment in order.fulfilments.items()),
            returns=tuple(BuyerReturn(return_id=key, lines=ret["lines"], status=ret["status"])
                          for key, ret in order.returns.items()),
        )
