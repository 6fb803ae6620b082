"""Dashboard metrics: the per-order facts behind a store's revenue, orders, products and customers.

Facts, not pre-aggregated sums: a "day" depends on the time zone the merchant
asks in (queries/dashboard.py), so sums per UTC day could not answer it. Every
period query is an index range scan over (store_id, placed_at) instead.

Which orders count, and what revenue is, is defined once, in `COUNTED_ORDER`
below (and in docs/read-models.md).
"""

from __future__ import annotations

from domain.order import Order
from domain.product import Product
from domain.store import Store
from projections.projection import Projection, handles
from projections.read_models.timestamps import utc_text

# An order counts towards revenue, order count and customers once it is paid, and
# stops counting if it is cancelled or refunded in full. Alias `o` is rm_dashboard_orders.
COUNTED_ORDER = "o.paid = 1 AND o.status NOT IN ('cancelled', 'refunded')"
# Its revenue: what the buyer paid (goods, shipping, tax) less what was refunded so far.
ORDER_REVENUE = "o.total - o.refunded"


class DashboardMetrics(Projection):
    name = "dashboard_metrics"
    tables = ("rm_dashboard_orders", "rm_dashboard_lines", "rm_dashboard_products", "rm_dashboard_stores")

    def setup(self, tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_dashboard_orders ("
            "order_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, customer_id TEXT, placed_at TEXT NOT NULL, "
            "total BIGINT NOT NULL, refunded BIGINT NOT NULL, paid INTEGER NOT NULL, status TEXT NOT NULL)"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_dashboard_orders_store_placed ON rm_dashboard_orders (store_id, placed_at)"
        )
        # A customer's first order ever: MIN(placed_at) by this index, for new-vs-returning.
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_dashboard_orders_store_customer "
            "ON rm_dashboard_orders (store_id, customer_id, placed_at)"
        )
        # gross: the line's price including tax, the same basis as the order total.
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_dashboard_lines ("
            "order_id TEXT NOT NULL, sku TEXT NOT NULL, product_id TEXT NOT NULL, quantity INTEGER NOT NULL, "
            "gross BIGINT NOT NULL, PRIMARY KEY (order_id, sku))"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_dashboard_products ("
            "product_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, title TEXT NOT NULL)"
        )
        tx.execute("CREATE TABLE IF NOT EXISTS rm_dashboard_stores (store_id TEXT PRIMARY KEY, currency TEXT NOT NULL)")

    @handles(Store.Created)
    def store_opened(self, tx, event) -> None:
        tx.execute("INSERT INTO rm_dashboard_stores VALUES (%s, %s)", (str(event.originator_id), event.currency))

    @handles(Store.CurrencyChanged)
    def currency_changed(self, tx, event) -> None:
        tx.execute(
            "UPDATE rm_dashboard_stores SET currency = %s WHERE store_id = %s",
            (event.currency, str(event.originator_id)),
        )

    @handles(Product.Created)
    def product_created(self, tx, event) -> None:
        tx.execute(
            "INSERT INTO rm_dashboard_products VALUES (%s, %s, %s)",
            (str(event.originator_id), str(event.store_id), event.title),
        )

    @handles(Product.DetailsChanged)
    def product_renamed(self, tx, event) -> None:
        tx.execute(
            "UPDATE rm_dashboard_products SET title = %s WHERE product_id = %s", (event.title, str(event.originator_id))
        )

    @handles(Order.Created)
    def placed(self, tx, event) -> None:
        order_id = str(event.originator_id)
        tx.execute(
            "INSERT INTO rm_dashboard_orders VALUES (%s, %s, %s, %s, %s, 0, 0, 'pending_payment')",
            (order_id, str(event.store_id), str(event.customer_id) if event.customer_id else None,
             utc_text(event.timestamp), event.totals["total"]),
        )
        gross = {line["sku"]: line["gross"] for line in event.totals["lines"]}
        tx.executemany(
            "INSERT INTO rm_dashboard_lines VALUES (%s, %s, %s, %s, %s)",
            [(order_id, line["sku"], str(line["product_id"]), line["quantity"], gross[line["sku"]])
             for line in event.lines],
        )

    @handles(Order.Paid)
    def paid(self, tx, event) -> None:
        self._update(tx, event, "paid = 1, status = 'paid'")

    @handles(Order.Fulfilled)
    def fulfilled(self, tx, event) -> None:
        self._update(tx, event, "status = %s", event.status)

    @handles(Order.Delivered)
    def delivered(self, tx, event) -> None:
        self._update(tx, event, "status = 'delivered'")

    @handles(Order.Cancelled)
    def cancelled(self, tx, event) -> None:
        self._update(tx, event, "status = 'cancelled'")

    @handles(Order.Refunded)
    def refunded(self, tx, event) -> None:
        self._update(tx, event, "status = %s, refunded = refunded + %s", event.status, event.amount)

    @staticmethod
    def _update(tx, event, assignments: str, *params) -> None:
        tx.execute(
            f"UPDATE rm_dashboard_orders SET {assignments} WHERE order_id = %s", (*params, str(event.originator_id))
        )
