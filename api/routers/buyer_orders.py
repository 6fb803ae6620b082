"""The buyer's view of their order, opened with the order token from checkout."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path

from api.auth import Principal, storefront
from api.examples import ORDER_ID, example
from api.services import Services, services
from queries.buyer_orders import BuyerOrder, BuyerOrderQueries

router = APIRouter(prefix="/v1/orders", tags=["storefront: order status"])

BUYER_ORDER_EXAMPLE = {
    "order_id": ORDER_ID, "status": "paid", "currency": "EUR",
    "lines": [{"sku": "MUG-STONE-BLUE", "title": "Stoneware Mug — Blue", "quantity": 2, "unit_price": 1890,
               "amount": 3780, "tax": 604, "gross": 3780}],
    "subtotal": 3780, "shipping": 495, "tax": 683, "total": 4275, "paid_amount": 4275, "refunded_amount": 0,
    "country": "DE", "shipping_method": "standard",
}


@router.get("/{order_id}", summary="Order status for the buyer", response_model=BuyerOrder,
            responses=example(BUYER_ORDER_EXAMPLE))
def order_status(
    order_id: Annotated[UUID, Path()],
    order_token: Annotated[str, Header(alias="X-Order-Token", min_length=1, max_length=200,
                                       description="`order_token` from checkout")],
    principal: Principal = Depends(storefront), svc: Services = Depends(services),
):
    return BuyerOrderQueries(svc.app).order_status(principal.ctx, order_id, order_token)
