"""Stock levels: on hand, reserved and available per stock item (one SKU at one location).

`available` (on hand − reserved) is stored, not derived at read time, so the
low-stock list is an index range scan rather than a scan of every item.
"""

from __future__ import annotations

from domain.stock import StockItem
from projections.projection import Projection, handles
from projections.read_models.timestamps import utc_text


class StockLevels(Projection):
    name = "stock_levels"
    tables = ("rm_stock_levels",)

    def setup(self, tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_stock_levels ("
            "stock_item_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, sku TEXT NOT NULL, product_id TEXT NOT NULL, "
            "location TEXT NOT NULL, on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL, available BIGINT NOT NULL, "
            "updated_at TEXT NOT NULL, version BIGINT NOT NULL)"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_stock_levels_store_sku ON rm_stock_levels (store_id, sku)")
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_stock_levels_store_available ON rm_stock_levels (store_id, available, sku)"
        )

    @handles(StockItem.Created)
    def created(self, tx, event) -> None:
        tx.execute(
            "INSERT INTO rm_stock_levels VALUES (%s, %s, %s, %s, %s, 0, 0, 0, %s, %s)",
            (str(event.originator_id), str(event.store_id), event.sku, str(event.product_id), event.location,
             utc_text(event.timestamp), event.originator_version),
        )

    @handles(StockItem.Received)
    def received(self, tx, event) -> None:
        self._move(tx, event, on_hand=event.quantity)

    @handles(StockItem.Adjusted)
    def adjusted(self, tx, event) -> None:
        # A stocktake replaces the count outright; reservations stand.
        tx.execute(
            "UPDATE rm_stock_levels SET on_hand = %s, available = %s - reserved WHERE stock_item_id = %s",
            (event.on_hand, event.on_hand, str(event.originator_id)),
        )
        self._move(tx, event)

    @handles(StockItem.Reserved)
    def reserved(self, tx, event) -> None:
        self._move(tx, event, reserved=event.quantity)

    @handles(StockItem.Released)
    def released(self, tx, event) -> None:
        self._move(tx, event, reserved=-event.quantity)

    @handles(StockItem.Committed)
    def committed(self, tx, event) -> None:
        self._move(tx, event, on_hand=-event.quantity, reserved=-event.quantity)

    @staticmethod
    def _move(tx, event, *, on_hand: int = 0, reserved: int = 0) -> None:
        # Rows, not SQL: a hot SKU's reservations and commits within a batch merge into one UPDATE.
        tx.update(
            "rm_stock_levels", {"stock_item_id": str(event.originator_id)},
            set={"updated_at": utc_text(event.timestamp), "version": event.originator_version},
            add={"on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved},
        )
