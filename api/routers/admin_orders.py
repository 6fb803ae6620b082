"""Admin orders: the order list and detail (read model `order_list`), and the lifecycle after checkout.

Payment, fulfilment, delivery, cancellation and refunds follow the order's state
machine (domain/order.py TRANSITIONS); a step it does not allow from the current
status is 409 `order.invalid_transition`. Writes answer with the order's new status,
from the command; pass their `X-Trafi-Position` as `min_position` to read it back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from api.auth import Principal, admin_route, require
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import ORDER_DETAIL_EXAMPLE, ORDER_ID, ORDER_SUMMARY_EXAMPLE, example, with_examples
from api.services import Services, services
from commands import orders
from domain.order import STATES
from domain.product import SKU_PATTERN
from queries.orders import OrderDetail, OrderSummary
from queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

router = APIRouter(prefix="/v1/admin/orders", tags=["admin: orders"])

ONE_LINE = r"^[^\x00-\x1f\x7f]*$"  # free text kept in events and read models: no control characters
MAX_MONEY = 10**12

OrderStatus = Literal[STATES]
OrderId = Annotated[UUID, Path(description="The order's id, from checkout")]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=SKU_PATTERN.pattern)]



class OrderChanged(BaseModel):
    model_config = with_examples({"order_id": ORDER_ID, "status": "paid"})
    order_id: UUID
    status: OrderStatus


class Payment(BaseModel):
    model_config = with_examples({"amount": 4275, "reference": "psp_8f2k1x"})
    amount: int = Field(ge=0, le=MAX_MONEY, description="Must equal the order total (minor units)")
    reference: str = Field(min_length=1, max_length=200, pattern=ONE_LINE, description="The payment provider's reference")


class Fulfilment(BaseModel):
    model_config = with_examples({"lines": {"MUG-STONE-BLUE": 2}, "carrier": "DHL", "tracking_number": "00340434161094042557"})
    lines: dict[Sku, Annotated[int, Field(ge=1, le=10_000)]] = Field(
        min_length=1, max_length=100, description="SKU → units shipped now (at most what is left to ship)")
    carrier: str = Field(default="", max_length=100, pattern=ONE_LINE)
    tracking_number: str = Field(default="", max_length=100, pattern=ONE_LINE)


class Cancellation(BaseModel):
    model_config = with_examples({"reason": "customer asked to cancel"})
    reason: str = Field(default="", max_length=500, pattern=ONE_LINE)


class Refund(BaseModel):
    model_config = with_examples({"amount": 1890, "reason": "one mug arrived broken"})
    amount: int = Field(ge=1, le=MAX_MONEY, description="At most what was paid and not yet refunded")
    reason: str = Field(default="", max_length=500, pattern=ONE_LINE)


class Refunded(OrderChanged):
    model_config = with_examples({"order_id": ORDER_ID, "status": "partially_refunded", "refunded": 1890})
    refunded: int = Field(description="Refunded so far, in all")


@router.get("", summary="List orders, newest first", response_model=Page[OrderSummary],
            responses=example({"items": [ORDER_SUMMARY_EXAMPLE], "next_cursor": None}), **admin_route("orders:read"))
def list_orders(
    principal: Principal = Depends(require("orders:read")), svc: Services = Depends(services),
    order_status: Annotated[list[OrderStatus] | None, Query(
        alias="status", max_length=len(STATES), description="Only orders in one of these statuses (repeatable)")] = None,
    placed_from: Annotated[datetime | None, Query(description="Placed at or after (ISO-8601 with an offset)")] = None,
    placed_to: Annotated[datetime | None, Query(description="Placed before (ISO-8601 with an offset)")] = None,
    email: Annotated[str | None, Query(min_length=1, max_length=254, pattern=ONE_LINE,
                                       description="The buyer's e-mail (exact, any case)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")] = None,
    min_position: MinPosition = None,
):
    return svc.queries.orders.list_orders(
        principal.ctx, status=order_status or None, placed_from=placed_from, placed_to=placed_to, email=email,
        limit=limit, cursor=cursor, min_position=min_position,
    )


@router.get("/{order_id}", summary="One order with its lines", response_model=OrderDetail,
            responses=example(ORDER_DETAIL_EXAMPLE), **admin_route("orders:read"))
def get_order(order_id: OrderId, principal: Principal = Depends(require("orders:read")),
              svc: Services = Depends(services), min_position: MinPosition = None):
    return svc.queries.orders.get_order(principal.ctx, order_id, min_position=min_position)


@router.post("/{order_id}/mark-paid", summary="Record the payment of the order total", response_model=OrderChanged,
             **admin_route("orders:write"))
def mark_paid(order_id: OrderId, body: Payment, principal: Principal = Depends(require("orders:write")),
              gateway: CommandGateway = Depends(command_gateway)):
    command = orders.MarkOrderPaid(order_id=order_id, amount=body.amount, reference=body.reference)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/{order_id}/fulfil", summary="Ship some or all of what is left (commits the reserved stock)",
             response_model=OrderChanged, **admin_route("orders:write"))
def fulfil(order_id: OrderId, body: Fulfilment, principal: Principal = Depends(require("orders:write")),
           gateway: CommandGateway = Depends(command_gateway)):
    command = orders.FulfilOrder(order_id=order_id, lines=body.lines, carrier=body.carrier,
                                 tracking_number=body.tracking_number)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/{order_id}/mark-delivered", summary="Record that a fulfilled order was delivered",
             response_model=OrderChanged, **admin_route("orders:write"))
def mark_delivered(order_id: OrderId, principal: Principal = Depends(require("orders:write")),
                   gateway: CommandGateway = Depends(command_gateway)):
    return gateway.run(orders.MarkOrderDelivered(order_id=order_id), principal.ctx).data


@router.post("/{order_id}/cancel", summary="Cancel an order before fulfilment (releases its reserved stock)",
             response_model=OrderChanged, **admin_route("orders:cancel"))
def cancel(order_id: OrderId, body: Cancellation, principal: Principal = Depends(require("orders:cancel")),
           gateway: CommandGateway = Depends(command_gateway)):
    command = orders.CancelOrder(order_id=order_id, reason=body.reason)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/{order_id}/refund", summary="Refund part or all of what was paid", response_model=Refunded,
             **admin_route("orders:write"))
def refund(order_id: OrderId, body: Refund, principal: Principal = Depends(require("orders:write")),
           gateway: CommandGateway = Depends(command_gateway)):
    command = orders.RefundOrder(order_id=order_id, amount=body.amount, reason=body.reason)
    return gateway.run(command, principal.ctx, payload=body).data
