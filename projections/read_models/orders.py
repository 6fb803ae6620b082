"""Order list: one row per order kept current through its lifecycle, plus its lines.

Serves the admin order list (filters by status, placed date and buyer e-mail, keyset
pagination newest first), the order detail page and a customer's order history.
"""

from __future__ import annotations

from domain.order import Order
from projections.projection import Projection, handles
from projections.read_models.timestamps import utc_text

# A status change carries its status only when it can be more than one (fulfilment, refund).
_FIXED_STATUS = {Order.Paid: "paid", Order.Delivered: "delivered", Order.Cancelled: "cancelled"}


def buyer_email(event) -> str | None:
    """The e-mail as the list filters on it: lower-case (addresses are matched case-insensitively)."""
    value = event.email.value if event.email is not None else None
    return value.lower() if isinstance(value, str) else None


class OrderList(Projection):
    name = "order_list"
    # Not "rm_orders_lines": a table name must not look like an index of another table.
    tables = ("rm_orders", "rm_order_lines", "rm_order_refunds")

    def setup(self, tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_orders ("
            "order_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, customer_id TEXT, email TEXT, "
            "status TEXT NOT NULL, currency TEXT NOT NULL, subtotal BIGINT NOT NULL, shipping BIGINT NOT NULL, "
            "tax BIGINT NOT NULL, total BIGINT NOT NULL, paid_amount BIGINT NOT NULL, refunded BIGINT NOT NULL, "
            "country TEXT, shipping_method TEXT, item_count INTEGER NOT NULL, "
            "placed_at TEXT NOT NULL, paid_at TEXT, updated_at TEXT NOT NULL, version BIGINT NOT NULL)"
        )
        # Every list query is "this store, maybe one filter, newest first": each index ends in the sort key.
        tx.execute("CREATE INDEX IF NOT EXISTS rm_orders_store_placed ON rm_orders (store_id, placed_at, order_id)")
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_orders_store_status ON rm_orders (store_id, status, placed_at, order_id)"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_orders_store_email ON rm_orders (store_id, email, placed_at, order_id)"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_orders_store_customer "
            "ON rm_orders (store_id, customer_id, placed_at, order_id)"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_order_lines ("
            "order_id TEXT NOT NULL, line_no INTEGER NOT NULL, sku TEXT NOT NULL, product_id TEXT NOT NULL, "
            "title TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price BIGINT NOT NULL, amount BIGINT NOT NULL, "
            "tax BIGINT NOT NULL, gross BIGINT NOT NULL, tax_class TEXT NOT NULL, unit_cost BIGINT NOT NULL, "
            "fulfilled INTEGER NOT NULL, PRIMARY KEY (order_id, line_no))"
        )
        # Every refund asked for, so the payment reconciler finds those still pending.
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_order_refunds ("
            "order_id TEXT NOT NULL, refund_id TEXT NOT NULL, amount BIGINT NOT NULL, "
            "status TEXT NOT NULL, requested_at TEXT NOT NULL, settled_at TEXT, PRIMARY KEY (order_id, refund_id))"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_order_refunds_status ON rm_order_refunds (status, requested_at)")

    # Handlers write rows, not SQL: within a batch an order's later changes fold into
    # its insert (projections/row_batch.py), which is what keeps rebuilds fast.
    @handles(Order.Created)
    def placed(self, tx, event) -> None:
        totals = event.totals
        placed_at = utc_text(event.timestamp)
        order_id = str(event.originator_id)
        tx.insert("rm_orders", {
            "order_id": order_id, "store_id": str(event.store_id),
            "customer_id": str(event.customer_id) if event.customer_id else None, "email": buyer_email(event),
            "status": "pending_payment", "currency": event.currency, "subtotal": totals["subtotal"],
            "shipping": totals["shipping"], "tax": totals["tax"], "total": totals["total"], "paid_amount": 0,
            "refunded": 0, "country": event.country, "shipping_method": event.shipping_method,
            "item_count": sum(line["quantity"] for line in event.lines), "placed_at": placed_at, "paid_at": None,
            "updated_at": placed_at, "version": event.originator_version,
        })
        line_totals = {line["sku"]: line for line in totals["lines"]}
        for line_no, line in enumerate(event.lines, start=1):
            priced = line_totals[line["sku"]]
            tx.insert("rm_order_lines", {
                "order_id": order_id, "line_no": line_no, "sku": line["sku"], "product_id": str(line["product_id"]),
                "title": line["title"], "quantity": line["quantity"], "unit_price": line["unit_price"],
                "amount": priced["amount"], "tax": priced["tax"], "gross": priced["gross"],
                "tax_class": line["tax_class"], "unit_cost": line["unit_cost"], "fulfilled": 0,
            })

    @handles(Order.Paid)
    def paid(self, tx, event) -> None:
        self._update(tx, event, {"status": "paid", "paid_amount": event.amount, "paid_at": utc_text(event.timestamp)})

    @handles(Order.Fulfilled)
    def fulfilled(self, tx, event) -> None:
        for sku, quantity in event.quantities.items():
            tx.update("rm_order_lines", {"order_id": str(event.originator_id), "sku": sku}, add={"fulfilled": quantity})
        self._update(tx, event, {"status": event.status})

    @handles(Order.Delivered, Order.Cancelled)
    def status_changed(self, tx, event) -> None:
        self._update(tx, event, {"status": _FIXED_STATUS[type(event)]})

    @handles(Order.Refunded)
    def refunded(self, tx, event) -> None:
        self._update(tx, event, {"status": event.status}, add={"refunded": event.amount})
        if event.refund_id is not None:  # refunds before payments had ids were never pending
            self._settle_refund(tx, event, "succeeded")

    @handles(Order.RefundRequested)
    def refund_requested(self, tx, event) -> None:
        tx.insert("rm_order_refunds", {
            "order_id": str(event.originator_id), "refund_id": event.refund_id, "amount": event.amount,
            "status": "pending", "requested_at": utc_text(event.timestamp), "settled_at": None,
        })

    @handles(Order.RefundFailed)
    def refund_failed(self, tx, event) -> None:
        self._settle_refund(tx, event, "failed")

    @staticmethod
    def _settle_refund(tx, event, status: str) -> None:
        tx.update("rm_order_refunds", {"order_id": str(event.originator_id), "refund_id": event.refund_id},
                  set={"status": status, "settled_at": utc_text(event.timestamp)})

    @handles(Order.PaymentUnmatched)
    def payment_unmatched(self, tx, event) -> None:
        # Money the order did not take as its payment still counts as captured (it will be refunded).
        self._update(tx, event, {}, add={"paid_amount": event.amount})

    @staticmethod
    def _update(tx, event, changes: dict, add: dict | None = None) -> None:
        tx.update(
            "rm_orders", {"order_id": str(event.originator_id)},
            set={**changes, "updated_at": utc_text(event.timestamp), "version": event.originator_version}, add=add,
        )
