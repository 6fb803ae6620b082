"""Admin orders: the order list and detail (read model `order_list`), and the lifecycle after checkout.

Payment, fulfilment, delivery, cancellation, refunds and returns follow the order's
state machine (domain/order.py TRANSITIONS, RETURN_TRANSITIONS); a step it does not
allow from the current status is 409 `order.invalid_transition`. Writes answer with
the order's new status, from the command; pass their `X-Trafi-Position` as
`min_position` to read it back. Refunds and cancellations of paid orders pay the
money back through the provider that took it (commands/payments/service.py).

A 3PL posts shipments to `…/fulfilments` with its own shipment id: posting the same
shipment again changes nothing, so its retries are safe without an Idempotency-Key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from api.auth import Principal, admin_route, require
from api.commanding import CommandGateway, MinPosition, answered, command_gateway
from api.routers.payments import NewReturn, ReturnChanged, id_from_key
from api.examples import ORDER_DETAIL_EXAMPLE, ORDER_ID, ORDER_SUMMARY_EXAMPLE, example, with_examples
from api.services import Services, services
from commands import orders
from domain.order import STATES
from domain.product import SKU_PATTERN
from queries.order_payments import OrderPayments, OrderPaymentsQueries
from queries.orders import OrderDetail, OrderSummary
from queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

router = APIRouter(prefix="/v1/admin/orders", tags=["admin: orders"])

ONE_LINE = r"^[^\x00-\x1f\x7f]*$"  # free text kept in events and read models: no control characters
MAX_MONEY = 10**12

OrderStatus = Literal[STATES]
PROVIDER_DOWN = {502: {"description": "The order's payment provider is not configured here or failed"}}
OrderId = Annotated[UUID, Path(description="The order's id, from checkout")]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=SKU_PATTERN.pattern)]
Quantities = Annotated[dict[Sku, Annotated[int, Field(ge=1, le=10_000)]], Field(max_length=100)]
ExternalId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]



class OrderChanged(BaseModel):
    model_config = with_examples({"order_id": ORDER_ID, "status": "paid"})
    order_id: UUID
    status: OrderStatus


class Payment(BaseModel):
    model_config = with_examples({"amount": 4275, "reference": "psp_8f2k1x"})
    amount: int = Field(ge=0, le=MAX_MONEY, description="Must equal the order total (minor units)")
    reference: str = Field(min_length=1, max_length=200, pattern=ONE_LINE, description="The payment provider's reference")


class Fulfilment(BaseModel):
    model_config = with_examples({"lines": {"MUG-STONE-BLUE": 2}, "carrier": "DHL", "tracking_number": "00340434161094042557",
                                  "fulfilment_id": "3pl-shp-88412"})
    lines: dict[Sku, Annotated[int, Field(ge=1, le=10_000)]] = Field(
        min_length=1, max_length=100, description="SKU → units shipped now (at most what is left to ship)")
    carrier: str = Field(default="", max_length=100, pattern=ONE_LINE)
    tracking_number: str = Field(default="", max_length=100, pattern=ONE_LINE)
    fulfilment_id: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$",
                                      description="The 3PL's shipment id: the same shipment posted again is a no-op")


class Fulfilled(BaseModel):
    model_config = with_examples({"order_id": ORDER_ID, "status": "fulfilled", "fulfilment_id": "3pl-shp-88412"})
    order_id: UUID
    status: OrderStatus
    fulfilment_id: str


class Tracking(BaseModel):
    model_config = with_examples({"carrier": "DHL", "tracking_number": "00340434161094042557"})
    carrier: str = Field(min_length=1, max_length=100, pattern=ONE_LINE)
    tracking_number: str = Field(min_length=1, max_length=100, pattern=ONE_LINE)


class Cancellation(BaseModel):
    model_config = with_examples({"reason": "customer asked to cancel"})
    reason: str = Field(default="", max_length=500, pattern=ONE_LINE)


class Refund(BaseModel):
    model_config = with_examples({"amount": 1890, "reason": "one mug arrived broken", "restock": {"MUG-STONE-BLUE": 1}})
    amount: int = Field(ge=1, le=MAX_MONEY, description="At most what was paid and not yet refunded")
    reason: str = Field(default="", max_length=500, pattern=ONE_LINE)
    restock: Quantities = Field(default_factory=dict, description=(
        "SKU → units to put back: units not shipped yet are released, shipped ones come back on hand"))


class Refunded(OrderChanged):
    model_config = with_examples({"order_id": ORDER_ID, "status": "partially_refunded", "refund_id": "rf_1c9e0b7d2a",
                                  "refund_status": "succeeded", "amount": 1890, "refunded": 1890, "refundable": 2385})
    refund_id: str
    refund_status: Literal["pending", "succeeded", "failed"] = Field(
        description="pending: the provider has not confirmed yet (retried until it does)")
    amount: int
    refunded: int = Field(description="Refunded so far, in all")
    refundable: int = Field(description="What can still be refunded")


class Cancelled(OrderChanged):
    model_config = with_examples({"order_id": ORDER_ID, "status": "cancelled", "refund": None})
    refund: Refunded | None = Field(default=None, description="The refund of what was captured, if anything was")


class ReturnDecision(BaseModel):
    model_config = with_examples({"reason": "outside the 30-day window"})
    reason: str = Field(default="", max_length=500, pattern=ONE_LINE)


class ReturnReceipt(BaseModel):
    model_config = with_examples({"restock": True})
    restock: bool = Field(default=True, description="Put the returned units back on hand")


class ReturnRefund(BaseModel):
    model_config = with_examples({"amount": None, "reason": "return received"})
    amount: int | None = Field(default=None, ge=1, le=MAX_MONEY,
                               description="Default: what the returned units cost (shipping is not refunded)")
    reason: str = Field(default="", max_length=500, pattern=ONE_LINE)




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
             response_model=Fulfilled, **admin_route("orders:write"))
def fulfil(order_id: OrderId, body: Fulfilment, principal: Principal = Depends(require("orders:write")),
           gateway: CommandGateway = Depends(command_gateway)):
    command = orders.FulfilOrder(order_id=order_id, lines=body.lines, carrier=body.carrier,
                                 tracking_number=body.tracking_number, fulfilment_id=body.fulfilment_id)
    return gateway.run(command, principal.ctx, payload=body).data


@router.put("/{order_id}/fulfilments/{fulfilment_id}/tracking", summary="Set a shipment's carrier and tracking number",
            response_model=Fulfilled, **admin_route("orders:write"))
def update_tracking(order_id: OrderId, fulfilment_id: ExternalId, body: Tracking,
                    principal: Principal = Depends(require("orders:write")),
                    gateway: CommandGateway = Depends(command_gateway)):
    command = orders.UpdateTracking(order_id=order_id, fulfilment_id=fulfilment_id, carrier=body.carrier,
                                    tracking_number=body.tracking_number)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/{order_id}/mark-delivered", summary="Record that a fulfilled order was delivered",
             response_model=OrderChanged, **admin_route("orders:write"))
def mark_delivered(order_id: OrderId, principal: Principal = Depends(require("orders:write")),
                   gateway: CommandGateway = Depends(command_gateway)):
    return gateway.run(orders.MarkOrderDelivered(order_id=order_id), principal.ctx).data


@router.post("/{order_id}/cancel", summary="Cancel before fulfilment: stock released, captured money refunded",
             response_model=Cancelled, responses=PROVIDER_DOWN, **admin_route("orders:cancel"))
def cancel(order_id: OrderId, body: Cancellation, response: Response,
           principal: Principal = Depends(require("orders:cancel")), svc: Services = Depends(services)):
    return answered(svc.payments.cancel(principal.ctx, order_id, reason=body.reason), response)


@router.post("/{order_id}/refund", summary="Refund part or all of what was paid (through the provider)",
             response_model=Refunded, responses=PROVIDER_DOWN, **admin_route("orders:write"))
def refund(order_id: OrderId, body: Refund, response: Response, principal: Principal = Depends(require("orders:write")),
           svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    result = svc.payments.refund(principal.ctx, order_id, refund_id=id_from_key("rf_", gateway.idempotency_key),
                                 amount=body.amount, reason=body.reason, restock=body.restock)
    return answered(result, response)


@router.get("/{order_id}/payments", summary="Payments, refunds, disputes, shipments, returns and the payment trail",
            response_model=OrderPayments, **admin_route("orders:read"))
def order_payments(order_id: OrderId, principal: Principal = Depends(require("orders:read")),
                   svc: Services = Depends(services)):
    return OrderPaymentsQueries(svc.app).order_payments(principal.ctx, order_id)


# --- returns -------------------------------------------------------------------------------
@router.post("/{order_id}/returns", summary="Open a return for shipped units (on the buyer's behalf)",
             response_model=ReturnChanged, status_code=201, **admin_route("orders:write"))
def open_return(order_id: OrderId, body: NewReturn, principal: Principal = Depends(require("orders:write")),
                gateway: CommandGateway = Depends(command_gateway)):
    command = orders.RequestReturn(order_id=order_id, return_id=id_from_key("ret_", gateway.idempotency_key),
                                   lines=body.lines, reason=body.reason)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/{order_id}/returns/{return_id}/authorise", summary="Accept a return request",
             response_model=ReturnChanged, **admin_route("orders:write"))
def authorise_return(order_id: OrderId, return_id: ExternalId, principal: Principal = Depends(require("orders:write")),
                     gateway: CommandGateway = Depends(command_gateway)):
    return gateway.run(orders.AuthoriseReturn(order_id=order_id, return_id=return_id), principal.ctx).data


@router.post("/{order_id}/returns/{return_id}/reject", summary="Refuse a return request",
             response_model=ReturnChanged, **admin_route("orders:write"))
def reject_return(order_id: OrderId, return_id: ExternalId, body: ReturnDecision,
                  principal: Principal = Depends(require("orders:write")),
                  gateway: CommandGateway = Depends(command_gateway)):
    command = orders.RejectReturn(order_id=order_id, return_id=return_id, reason=body.reason)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/{order_id}/returns/{return_id}/receive", summary="The returned parcel arrived (optionally restock it)",
             response_model=ReturnChanged, **admin_route("orders:write"))
def receive_return(order_id: OrderId, return_id: ExternalId, body: ReturnReceipt,
                   principal: Principal = Depends(require("orders:write")),
                   gateway: CommandGateway = Depends(command_gateway)):
    command = orders.ReceiveReturn(order_id=order_id, return_id=return_id, restock=body.restock)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/{order_id}/returns/{return_id}/refund", summary="Refund a received return (through the provider)",
             response_model=Refunded, responses=PROVIDER_DOWN, **admin_route("orders:write"))
def refund_return(order_id: OrderId, return_id: ExternalId, body: ReturnRefund, response: Response,
                  principal: Principal = Depends(require("orders:write")), svc: Services = Depends(services)):
    result = svc.payments.refund_return(principal.ctx, order_id, return_id, amount=body.amount, reason=body.reason)
    return answered(result, response)
