"""Stock: receive goods and record stocktakes (reservations happen at checkout)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.stock import StockItem


class StockCommand(Command):
    sku: str = Field(max_length=64)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ids.stock_item_id(ctx.store_id, self.sku)]

    def item(self, uow: UnitOfWork) -> StockItem:
        return uow.get(StockItem, ids.stock_item_id(uow.ctx.store_id, self.sku), "stock_item")


class ReceiveStock(StockCommand):
    quantity: int
    reason: str = Field(default="received", max_length=200)


def receive_stock(cmd: ReceiveStock, uow: UnitOfWork) -> dict:
    item = cmd.item(uow)
    item.receive(cmd.quantity, cmd.reason)
    return {"sku": cmd.sku, "on_hand": item.on_hand, "available": item.available}


class AdjustStock(StockCommand):
    on_hand: int
    reason: str = Field(default="stocktake", max_length=200)


def adjust_stock(cmd: AdjustStock, uow: UnitOfWork) -> dict:
    item = cmd.item(uow)
    item.adjust_to(cmd.on_hand, cmd.reason)
    return {"sku": cmd.sku, "on_hand": item.on_hand, "available": item.available}
