"""Order list: one row per order, kept current through its lifecycle (for dashboards and the admin list)."""

from __future__ import annotations

from domain.order import Order
from projections.projection import Projection, handles


class OrderList(Projection):
    name = "order_list"

    def setup(self, tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_orders ("
            "order_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, customer_id TEXT, email TEXT, "
            "status TEXT NOT NULL, currency TEXT NOT NULL, total BIGINT NOT NULL, refunded BIGINT NOT NULL, "
            "placed_at TEXT NOT NULL, updated_at TEXT NOT NULL, version BIGINT NOT NULL)"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_orders_store_placed ON rm_orders (store_id, placed_at, order_id)")

    @handles(Order.Created)
    def placed(self, tx, event) -> None:
        tx.execute(
            "INSERT INTO rm_orders VALUES (%s, %s, %s, %s, 'pending_payment', %s, %s, 0, %s, %s, %s)",
            (
                str(event.originator_id), str(event.store_id), str(event.customer_id) if event.customer_id else None,
                event.email.value if event.email else None, event.currency, event.totals["total"],
                event.timestamp.isoformat(), event.timestamp.isoformat(), event.originator_version,
            ),
        )

    @handles(Order.Paid, Order.Fulfilled, Order.Delivered, Order.Cancelled)
    def status_changed(self, tx, event) -> None:
        status = getattr(event, "status", None) or {
            Order.Paid: "paid", Order.Delivered: "delivered", Order.Cancelled: "cancelled",
        }[type(event)]
        self._update(tx, event, "status = %s", (status,))

    @handles(Order.Refunded)
    def refunded(self, tx, event) -> None:
        self._update(tx, event, "status = %s, refunded = refunded + %s", (event.status, event.amount))

    @staticmethod
    def _update(tx, event, assignments: str, params: tuple) -> None:
        tx.execute(
            f"UPDATE rm_orders SET {assignments}, updated_at = %s, version = %s WHERE order_id = %s",
            (*params, event.timestamp.isoformat(), event.originator_version, str(event.originator_id)),
        )
