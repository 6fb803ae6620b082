"""Webhooks in: the payment provider tells us what happened, signed.

`POST /webhooks/stripe/{store}` (the store's slug or id). The signature is checked on
the raw bytes before anything is read (bad or stale → 400, nothing changes); the
Stripe event id is the idempotency key, recorded in the same transaction as the order
events it causes, so a redelivery is answered without being applied again. Events
about payments Trafi does not know, and types it does not act on, are acknowledged
(200, `handled: false`) so the provider stops sending them.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.examples import ORDER_ID, with_examples
from api.services import Services, services
from commands.context import StoreContext
from domain import ids

router = APIRouter(prefix="/webhooks", tags=["payment provider webhooks"])

StoreRef = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]{1,62}$|^[0-9a-f-]{36}$",
                               description="The store's slug (or id)")]


class WebhookReceipt(BaseModel):
    model_config = with_examples({"received": True, "event_id": "evt_3PqLr2", "type": "payment_intent.succeeded",
                                  "handled": True, "duplicate": False, "order_id": ORDER_ID, "order_status": "paid"})
    received: bool
    event_id: str
    type: str
    handled: bool
    duplicate: bool
    order_id: str | None
    order_status: str | None


def store_of(ref: str) -> UUID:
    try:
        return UUID(ref)
    except ValueError:
        return ids.store_id(ref)


@router.post("/stripe/{store}", summary="Stripe webhook endpoint (signed)", response_model=WebhookReceipt,
             responses={400: {"description": "Bad or stale signature, or not a Stripe event: nothing was changed"},
                        404: {"description": "Stripe is not configured in this deployment"},
                        413: {"description": "The body is larger than the limit"}})
async def stripe_webhook(store: StoreRef, request: Request, svc: Services = Depends(services)):
    payload = await request.body()  # the raw bytes: the signature covers them exactly
    ctx = StoreContext(store_of(store), actor="webhook:stripe")
    # The bus blocks on the database: keep it off the event loop.
    event, result = await run_in_threadpool(svc.payments.handle_webhook, ctx, "stripe", payload, request.headers)
    data = result.data
    return WebhookReceipt(received=True, event_id=event.event_id, type=event.type, handled=data["handled"],
                          duplicate=result.replayed, order_id=data["order_id"], order_status=data["status"])

