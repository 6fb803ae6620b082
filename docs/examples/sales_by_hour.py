"""Sales by hour and category: the worked example of docs/custom-projections.md.

Per store, per UTC hour and per product category: units sold, net revenue
(excluding tax) and gross profit (net revenue − unit cost × quantity), in
integer minor units of the order's currency. An order counts in the hour it
was placed and is taken out of that same hour when it is cancelled.

Tested in CI by tests/integration/test_custom_projection_example.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple
from uuid import UUID

from domain.order import Order
from domain.product import Product
from projections.projection import Projection, handles
from projections.read_models.timestamps import from_utc_text, utc_text
from projections.views import ViewStore

UNCATEGORISED = "uncategorised"


def primary_category(categories) -> str:
    # Products carry a sorted list of categories; one per product keeps every unit
    # in exactly one row, so the rows of an hour add up to the store's sales.
    return categories[0] if categories else UNCATEGORISED


def hour_of(moment: datetime) -> str:
    # Truncate in UTC: truncating a local time would be wrong in half-hour time zones.
    return utc_text(moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0))


class SalesByHour(Projection):
    name = "sales_by_hour"  # pinned: names its tracking row; renaming it means a new projection
    # No table name starts with another's name + "_": rebuilds rename tables and indexes by prefix.
    tables = ("ex_sales_by_hour", "ex_sales_order_parts", "ex_sales_categories")

    def setup(self, tx) -> None:
        # Idempotent: runs every time a runner starts.
        tx.execute(
            "CREATE TABLE IF NOT EXISTS ex_sales_by_hour ("
            "store_id TEXT NOT NULL, hour TEXT NOT NULL, category TEXT NOT NULL, currency TEXT NOT NULL, "
            "units INTEGER NOT NULL, revenue BIGINT NOT NULL, profit BIGINT NOT NULL, "
            "PRIMARY KEY (store_id, hour, category, currency))"
        )
        # What each order added to each row: a cancellation subtracts exactly that, even if
        # the product's category changed since (Order.Cancelled carries only a reason).
        tx.execute(
            "CREATE TABLE IF NOT EXISTS ex_sales_order_parts ("
            "order_id TEXT NOT NULL, category TEXT NOT NULL, store_id TEXT NOT NULL, hour TEXT NOT NULL, "
            "currency TEXT NOT NULL, units INTEGER NOT NULL, revenue BIGINT NOT NULL, profit BIGINT NOT NULL, "
            "PRIMARY KEY (order_id, category))"
        )
        # The category of each product, as of the event being applied. Our own copy:
        # a projection never reads another projection's tables (they may be behind or ahead).
        tx.execute(
            "CREATE TABLE IF NOT EXISTS ex_sales_categories (product_id TEXT PRIMARY KEY, category TEXT NOT NULL)"
        )

    @handles(Product.Created, Product.DetailsChanged)
    def categorised(self, tx, event) -> None:
        tx.execute(
            "INSERT INTO ex_sales_categories (product_id, category) VALUES (%s, %s) "
            "ON CONFLICT (product_id) DO UPDATE SET category = excluded.category",
            (str(event.originator_id), primary_category(event.categories)),
        )

    @handles(Order.Created)
    def placed(self, tx, event) -> None:
        net = {line["sku"]: line["net"] for line in event.totals["lines"]}
        parts: dict[str, list[int]] = {}  # category → [units, revenue, profit]
        for line in event.lines:
            row = tx.execute(
                "SELECT category FROM ex_sales_categories WHERE product_id = %s", (str(line["product_id"]),)
            ).fetchone()
            part = parts.setdefault(row[0] if row else UNCATEGORISED, [0, 0, 0])
            part[0] += line["quantity"]
            part[1] += net[line["sku"]]
            part[2] += net[line["sku"]] - line["unit_cost"] * line["quantity"]
        order_id, store_id, hour = str(event.originator_id), str(event.store_id), hour_of(event.timestamp)
        for category, (units, revenue, profit) in parts.items():
            tx.execute(
                "INSERT INTO ex_sales_order_parts VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (order_id, category, store_id, hour, event.currency, units, revenue, profit),
            )
            self._add(tx, store_id, hour, category, event.currency, units, revenue, profit)

    @handles(Order.Cancelled)
    def cancelled(self, tx, event) -> None:
        order_id = str(event.originator_id)
        parts = tx.execute(
            "SELECT store_id, hour, category, currency, units, revenue, profit "
            "FROM ex_sales_order_parts WHERE order_id = %s",
            (order_id,),
        ).fetchall()
        for store_id, hour, category, currency, units, revenue, profit in parts:
            self._add(tx, store_id, hour, category, currency, -units, -revenue, -profit)
        tx.execute("DELETE FROM ex_sales_order_parts WHERE order_id = %s", (order_id,))

    @staticmethod
    def _add(tx, store_id, hour, category, currency, units, revenue, profit) -> None:
        # Increments, not read-modify-write: one statement, the same on SQLite and PostgreSQL.
        tx.execute(
            "INSERT INTO ex_sales_by_hour (store_id, hour, category, currency, units, revenue, profit) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (store_id, hour, category, currency) DO UPDATE SET "
            "units = ex_sales_by_hour.units + excluded.units, "
            "revenue = ex_sales_by_hour.revenue + excluded.revenue, "
            "profit = ex_sales_by_hour.profit + excluded.profit",
            (store_id, hour, category, currency, units, revenue, profit),
        )


class HourlySales(NamedTuple):
    hour: datetime  # start of the UTC hour
    category: str
    currency: str
    units: int
    revenue: int  # net of tax, minor units
    profit: int  # revenue − unit cost × quantity, minor units


def sales_by_hour(views: ViewStore, store_id: UUID, since: datetime, until: datetime) -> list[HourlySales]:
    """The rows of the hours starting in [since, until), oldest first.

    A row whose orders were all cancelled stays, at zero.
    """
    with views.read() as tx:
        rows = tx.execute(
            "SELECT hour, category, currency, units, revenue, profit FROM ex_sales_by_hour "
            "WHERE store_id = %s AND hour >= %s AND hour < %s ORDER BY hour, category, currency",
            (str(store_id), utc_text(since), utc_text(until)),
        ).fetchall()
    return [HourlySales(from_utc_text(hour), *rest) for hour, *rest in rows]
