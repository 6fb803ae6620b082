"""Stock levels and low-stock alerts (read model `stock_levels`).

An item is low on stock when what can still be sold — available = on hand −
reserved — is at or below a threshold. The default of 5 units is a starting
point; each query can pass its own.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from commands.context import StoreContext
from domain.errors import InvalidValue, NotFound
from projections.read_models.timestamps import from_utc_text
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel
from queries.pagination import MAX_PAGE_SIZE, Page, check_limit, decode_cursor, page_of

DEFAULT_LOW_STOCK_THRESHOLD = 5
COLUMNS = "stock_item_id, sku, product_id, location, on_hand, reserved, available, updated_at"


class StockLevel(QueryModel):
    stock_item_id: UUID
    sku: str
    product_id: UUID
    location: str
    on_hand: int
    reserved: int  # held by placed orders not yet shipped
    available: int  # on_hand − reserved: what can still be sold
    low_stock: bool  # available <= the query's threshold
    updated_at: datetime


def check_threshold(threshold: int) -> int:
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
        raise InvalidValue("threshold", "must be a non-negative number of units", code="query.invalid_threshold")
    return threshold


def _level(row: tuple, threshold: int) -> StockLevel:
    stock_item_id, sku, product_id, location, on_hand, reserved, available, updated_at = row
    return StockLevel(
        stock_item_id=UUID(stock_item_id), sku=sku, product_id=UUID(product_id), location=location,
        on_hand=on_hand, reserved=reserved, available=available, low_stock=available <= threshold,
        updated_at=from_utc_text(updated_at),
    )


class StockQueries(ReadModelQueries):
    projection_name = "stock_levels"

    def levels(
        self, ctx: StoreContext, *, threshold: int = DEFAULT_LOW_STOCK_THRESHOLD,
        limit: int = MAX_PAGE_SIZE, cursor: str | None = None,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Page[StockLevel]:
        """Every stock item of the store, by SKU, each flagged against `threshold`."""
        check_threshold(threshold)
        check_limit(limit)
        where, params = "store_id = %s", [str(ctx.store_id)]
        if cursor is not None:
            (after_sku,) = decode_cursor(cursor, 1)
            where += " AND sku > %s"
            params.append(after_sku)
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(
                f"SELECT {COLUMNS} FROM rm_stock_levels WHERE {where} ORDER BY sku LIMIT %s", (*params, limit + 1)
            ).fetchall()
        return page_of(rows, limit, lambda row: (row[1],), lambda row: _level(row, threshold))

    def level(
        self, ctx: StoreContext, sku: str, *, threshold: int = DEFAULT_LOW_STOCK_THRESHOLD,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> StockLevel:
        check_threshold(threshold)
        with self.reading(min_position, timeout_s) as tx:
            row = tx.execute(
                f"SELECT {COLUMNS} FROM rm_stock_levels WHERE store_id = %s AND sku = %s", (str(ctx.store_id), sku)
            ).fetchone()
        if row is None:
            raise NotFound("stock_item", sku)
        return _level(row, threshold)

    def low_stock(
        self, ctx: StoreContext, *, threshold: int = DEFAULT_LOW_STOCK_THRESHOLD, limit: int = MAX_PAGE_SIZE,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> tuple[StockLevel, ...]:
        """The alert list: items at or below `threshold`, the emptiest first (then by SKU)."""
        check_threshold(threshold)
        check_limit(limit)
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(
                f"SELECT {COLUMNS} FROM rm_stock_levels WHERE store_id = %s AND available <= %s "
                "ORDER BY available, sku LIMIT %s",
                (str(ctx.store_id), threshold, limit),
            ).fetchall()
        return tuple(_level(row, threshold) for row in rows)
