"""Storefront payments and returns: the buyer pays and asks for returns with the order token.

`POST …/payment` starts paying (or resumes the attempt that can still succeed) and
answers with what the provider said: `succeeded`, `requires_action` (3-D Secure:
follow `next_action`, then confirm), or `requires_payment_method` with the decline in
`failure`. With Stripe, a storefront usually confirms in the browser with Stripe.js
(`client_secret`) and then calls `…/payment/confirm` without a card; the order is
paid exactly once whether that call or Stripe's webhook gets there first.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Response, status
from pydantic import BaseModel, Field

from api.auth import Principal, storefront
from api.commanding import CommandGateway, command_gateway
from api.examples import ORDER_ID, with_examples
from api.services import Services, services
from commands import orders
from commands.payments.service import PaymentOutcome
from domain.product import SKU_PATTERN
from queries.buyer_orders import BuyerOrderQueries

router = APIRouter(prefix="/v1/orders", tags=["storefront: payments and returns"])

OrderId = Annotated[UUID, Path(description="The order's id, from checkout")]
OrderToken = Annotated[str, Header(alias="X-Order-Token", min_length=1, max_length=200,
                                   description="`order_token` from checkout")]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=SKU_PATTERN.pattern)]
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
PaymentMethod = Field(default=None, min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
                      description="A provider payment method (`pm_…`) or, with the sandbox, a test card")
# A refused card (402) is the buyer's to fix; an unreachable provider (502) is safe to retry.
PROVIDER_ERRORS = {402: {"description": "Payment required"}, 502: {"description": "Bad gateway"}}
ReturnUrl = Field(default=None, max_length=2000, pattern=r"^https?://[\x21-\x7e]+$",
                  description="Where a 3-D Secure challenge sends the buyer back")


class StartPayment(BaseModel):
    model_config = with_examples({"payment_method": "pm_card_visa"})
    payment_method: str | None = PaymentMethod
    return_url: str | None = ReturnUrl


class ConfirmPayment(BaseModel):
    model_config = with_examples({"authentication": "pass"})
    payment_method: str | None = PaymentMethod
    authentication: Literal["pass", "fail"] | None = Field(
        default=None, description="Sandbox only: the outcome of its 3-D Secure challenge")
    return_url: str | None = ReturnUrl


class Payment(BaseModel):
    model_config = with_examples({
        "order_id": ORDER_ID, "order_status": "paid", "attempt": 1, "provider": "sandbox",
        "intent_id": "pi_sbx_4275_eur_0f3c1d2e4b5a69788796a5b4", "status": "succeeded", "amount": 4275,
        "currency": "EUR", "client_secret": "pi_sbx_4275_eur_0f3c1d2e4b5a69788796a5b4_secret_sandbox",
        "next_action": None, "failure": None,
    })
    order_id: UUID
    order_status: str
    attempt: int
    provider: str
    intent_id: str
    status: str = Field(description="requires_payment_method, requires_confirmation, requires_action, "
                                    "processing, succeeded or canceled")
    amount: int
    currency: str
    client_secret: str | None = Field(description="For the provider's browser SDK (Stripe.js)")
    next_action: dict | None = Field(description="What the buyer must do when status is requires_action")
    failure: str | None = Field(description="Why the last try was declined")


class NewReturn(BaseModel):
    model_config = with_examples({"lines": {"MUG-STONE-BLUE": 1}, "reason": "arrived chipped"})
    lines: dict[Sku, Annotated[int, Field(ge=1, le=10_000)]] = Field(min_length=1, max_length=100,
                                                                      description="SKU → units to send back")
    reason: str = Field(default="", max_length=500, pattern=ONE_LINE)


class ReturnChanged(BaseModel):
    model_config = with_examples({"order_id": ORDER_ID, "status": "delivered", "return_id": "ret_5f2a9c",
                                  "return_status": "requested", "lines": {"MUG-STONE-BLUE": 1}})
    order_id: UUID
    status: str
    return_id: str
    return_status: str
    lines: dict[str, int]


def _answer(outcome: PaymentOutcome, response: Response) -> dict:
    if outcome.position is not None:
        response.headers["X-Trafi-Position"] = str(outcome.position)
    return {k: v for k, v in vars(outcome).items() if k != "position"}


@router.post("/{order_id}/payment", summary="Pay for the order (or resume its open payment)", response_model=Payment,
             responses=PROVIDER_ERRORS)
def start_payment(order_id: OrderId, body: StartPayment, order_token: OrderToken, response: Response,
                  principal: Principal = Depends(storefront), svc: Services = Depends(services)):
    BuyerOrderQueries(svc.app).buyer_order(principal.ctx, order_id, order_token)
    outcome = svc.payments.start_payment(principal.ctx, order_id, payment_method=body.payment_method,
                                         return_url=body.return_url)
    return _answer(outcome, response)


@router.post("/{order_id}/payment/confirm", summary="Confirm the payment (after 3-D Secure or Stripe.js)",
             response_model=Payment, responses=PROVIDER_ERRORS)
def confirm_payment(order_id: OrderId, body: ConfirmPayment, order_token: OrderToken, response: Response,
                    principal: Principal = Depends(storefront), svc: Services = Depends(services)):
    BuyerOrderQueries(svc.app).buyer_order(principal.ctx, order_id, order_token)
    outcome = svc.payments.confirm_payment(principal.ctx, order_id, payment_method=body.payment_method,
                                           authentication=body.authentication, return_url=body.return_url)
    return _answer(outcome, response)


def id_from_key(prefix: str, idempotency_key: str | None) -> str:
    """The id of what a request creates (a return, a refund). A retried request — same
    Idempotency-Key — names the same thing, so it is recorded (and paid) once."""
    if idempotency_key:
        return prefix + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
    return prefix + uuid.uuid4().hex[:20]


@router.post("/{order_id}/returns", summary="Ask to send shipped items back", response_model=ReturnChanged,
             status_code=status.HTTP_201_CREATED)
def request_return(order_id: OrderId, body: NewReturn, order_token: OrderToken,
                   principal: Principal = Depends(storefront), svc: Services = Depends(services),
                   gateway: CommandGateway = Depends(command_gateway)):
    BuyerOrderQueries(svc.app).buyer_order(principal.ctx, order_id, order_token)
    command = orders.RequestReturn(order_id=order_id, return_id=id_from_key("ret_", gateway.idempotency_key),
                                   lines=body.lines, reason=body.reason)
    return gateway.run(command, principal.ctx, payload=body).data
