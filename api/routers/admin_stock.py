"""Admin stock: levels and low-stock alerts (read model `stock_levels`), goods in, stocktakes.

A SKU's stock item exists from the moment its variant is added
(`POST /v1/admin/products/{product_id}/variants`); reservations happen at checkout.
Writes answer with the item's new on-hand and available counts, from the command.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, admin_route, require
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import STOCK_LEVEL_EXAMPLE, example, with_examples
from api.services import Services, services
from commands import stock
from domain.product import SKU_PATTERN
from queries.pagination import MAX_PAGE_SIZE, Page
from queries.stock import DEFAULT_LOW_STOCK_THRESHOLD, StockLevel

router = APIRouter(prefix="/v1/admin/stock", tags=["admin: stock"])

ONE_LINE = r"^[^\x00-\x1f\x7f]*$"  # reasons are event data shown in read models: no control characters
MAX_UNITS = 1_000_000

Sku = Annotated[str, Path(min_length=1, max_length=64, pattern=SKU_PATTERN.pattern)]
Threshold = Annotated[int, Query(ge=0, le=MAX_UNITS, description="Low stock: available at or below this many units")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")]



class LowStock(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"threshold": 5, "items": [
        {**STOCK_LEVEL_EXAMPLE, "on_hand": 4, "reserved": 1, "available": 3, "low_stock": True}]}]})
    threshold: int
    items: tuple[StockLevel, ...] = Field(description="The emptiest first, then by SKU")


class Receipt(BaseModel):
    model_config = with_examples({"quantity": 24, "reason": "delivery 2026-11-21"})
    quantity: int = Field(ge=1, le=MAX_UNITS)
    reason: str = Field(default="received", min_length=1, max_length=200, pattern=ONE_LINE)


class Stocktake(BaseModel):
    model_config = with_examples({"on_hand": 38, "reason": "stocktake"})
    on_hand: int = Field(ge=0, le=10**9, description="The counted quantity; cannot be below what is reserved")
    reason: str = Field(default="stocktake", min_length=1, max_length=200, pattern=ONE_LINE)


class StockChanged(BaseModel):
    model_config = with_examples({"sku": "MUG-STONE-BLUE", "on_hand": 64, "available": 61})
    sku: str
    on_hand: int
    available: int


@router.get("", summary="Stock levels of every SKU, by SKU", response_model=Page[StockLevel],
            responses=example({"items": [STOCK_LEVEL_EXAMPLE], "next_cursor": None}), **admin_route("stock:read"))
def list_levels(
    principal: Principal = Depends(require("stock:read")), svc: Services = Depends(services),
    threshold: Threshold = DEFAULT_LOW_STOCK_THRESHOLD, limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")] = None,
    min_position: MinPosition = None,
):
    return svc.queries.stock.levels(principal.ctx, threshold=threshold, limit=limit, cursor=cursor,
                                    min_position=min_position)


# Two segments, so that no SKU (one segment) can be shadowed by it.
@router.get("/alerts/low-stock", summary="Low-stock alerts: SKUs at or below the threshold", response_model=LowStock,
            **admin_route("stock:read"))
def low_stock(principal: Principal = Depends(require("stock:read")), svc: Services = Depends(services),
              threshold: Threshold = DEFAULT_LOW_STOCK_THRESHOLD, limit: Limit = MAX_PAGE_SIZE,
              min_position: MinPosition = None):
    items = svc.queries.stock.low_stock(principal.ctx, threshold=threshold, limit=limit, min_position=min_position)
    return LowStock(threshold=threshold, items=items)


@router.get("/{sku}", summary="One SKU's stock level", response_model=StockLevel, responses=example(STOCK_LEVEL_EXAMPLE),
            **admin_route("stock:read"))
def get_level(sku: Sku, principal: Principal = Depends(require("stock:read")), svc: Services = Depends(services),
              threshold: Threshold = DEFAULT_LOW_STOCK_THRESHOLD, min_position: MinPosition = None):
    return svc.queries.stock.level(principal.ctx, sku, threshold=threshold, min_position=min_position)


@router.post("/{sku}/receive", summary="Receive goods: add units on hand", response_model=StockChanged,
             **admin_route("stock:write"))
def receive(sku: Sku, body: Receipt, principal: Principal = Depends(require("stock:write")),
            gateway: CommandGateway = Depends(command_gateway)):
    command = stock.ReceiveStock(sku=sku, quantity=body.quantity, reason=body.reason)
    return gateway.run(command, principal.ctx, payload=body).data


@router.post("/{sku}/adjust", summary="Record a stocktake: set the counted units on hand", response_model=StockChanged,
             **admin_route("stock:write"))
def adjust(sku: Sku, body: Stocktake, principal: Principal = Depends(require("stock:write")),
           gateway: CommandGateway = Depends(command_gateway)):
    command = stock.AdjustStock(sku=sku, on_hand=body.on_hand, reason=body.reason)
    return gateway.run(command, principal.ctx, payload=body).data
