"""Domain events (the commerce log) in the warehouse: the funnel without a storefront, and the money.

Mapping (docs/analytics.md has the table): cart created → visit, item added → add_to_cart,
buyer identified → checkout_start, shipping address or method → shipping, order placed →
payment, order paid → complete. A cart's visitor is the storefront's `visitor_id` given at
creation, else "cart:<cart id>"; its orders belong to that visitor.

Decoding is per event in Python (the log holds a few events per order, not per page view);
the rows then go to DuckDB as Arrow tables and everything that needs the warehouse's state —
which store a cart belongs to, whether an order was paid, the first item of a cart — is SQL,
applied in the order the log implies (products, carts, orders, then payments, then refunds),
so cutting the log into other batches gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable

import pyarrow as pa

from autopilot.warehouse import experiment_tables
from autopilot.warehouse.aggregates import Step, apply_staged
from domain.envelope import event_id_text

CART_CREATED = "trafi.cart.created.v1"
ITEM_ADDED = "trafi.cart.item_added.v1"
CHECKED_OUT = "trafi.cart.checked_out.v1"
ORDER_PLACED = "trafi.order.placed.v1"
ORDER_PAID = "trafi.order.paid.v1"
REFUNDED = "trafi.order.refunded.v1"
PAYMENT_FAILED = "trafi.order.payment_failed.v1"  # a declined payment: the checkout errors guardrail
PRODUCT_CREATED = "trafi.product.created.v1"
PRODUCT_CHANGED = "trafi.product.details_changed.v1"

# The funnel step each domain event stands for (indexes into schema.FUNNEL_STEPS); None: no step.
STEP_OF_TOPIC: dict[str, int | None] = {
    CART_CREATED: 0,
    ITEM_ADDED: 2,
    "trafi.cart.buyer_identified.v1": 3,
    "trafi.cart.shipping_address_set.v1": 4,
    "trafi.cart.shipping_method_chosen.v1": 4,
    CHECKED_OUT: None,
    ORDER_PLACED: 5,
    ORDER_PAID: 6,
    REFUNDED: None,
    PAYMENT_FAILED: None,
    "trafi.order.cancelled.v1": None,
}
PRODUCT_TOPICS = (PRODUCT_CREATED, PRODUCT_CHANGED)
TOPICS = (*STEP_OF_TOPIC, *PRODUCT_TOPICS)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class PaymentFees:
    """The store's payment fee, estimated: no provider reports its fee per payment here.

    Default 1.4 % + 25 minor units of what the buyer paid (a common European card rate);
    TRAFI_PAYMENT_FEE_BP and TRAFI_PAYMENT_FEE_FIXED_MINOR set it. A rebuild applies the
    current setting to every order.
    """

    rate_bp: int = 140
    fixed_minor: int = 25

    def of(self, total_minor: int) -> int:
        if total_minor <= 0:
            return 0
        return (total_minor * self.rate_bp * 2 + 10_000) // 20_000 + self.fixed_minor  # half up


_EVENT_FIELDS = {
    "position": pa.int64(), "topic": pa.string(), "event_id": pa.string(), "occurred_at_us": pa.int64(),
    "store_id": pa.string(), "cart_id": pa.string(), "order_id": pa.string(), "product_id": pa.string(),
    "sku": pa.string(), "quantity": pa.int32(), "amount_minor": pa.int64(), "currency": pa.string(),
    "customer_id": pa.string(), "visitor_id": pa.string(), "country": pa.string(), "category": pa.string(),
    "revenue_minor": pa.int64(), "tax_minor": pa.int64(), "cogs_minor": pa.int64(), "payment_fee_minor": pa.int64(),
}
_LINE_FIELDS = {"order_id": pa.string(), "sku": pa.string(), "product_id": pa.string(), "quantity": pa.int32(),
                "unit_cost_minor": pa.int64(), "revenue_minor": pa.int64()}
_UNIT_FIELDS = {"position": pa.int64(), "order_id": pa.string(), "sku": pa.string(), "quantity": pa.int32()}


@dataclass
class CommerceBatch:
    events: pa.Table  # one row per domain event, _EVENT_FIELDS
    lines: pa.Table  # the lines of the orders placed in the batch
    units_back: pa.Table  # units a refund released or restocked: their cost is no longer spent

    def __len__(self) -> int:
        return self.events.num_rows


def _text(value) -> str | None:
    return None if value is None else str(value)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def commerce_batch(notifications: Iterable, mapper, fees: PaymentFees) -> CommerceBatch:
    """Decode stored notifications (of TOPICS) into the batch's Arrow tables."""
    events: dict[str, list] = {name: [] for name in _EVENT_FIELDS}
    lines: dict[str, list] = {name: [] for name in _LINE_FIELDS}
    units: dict[str, list] = {name: [] for name in _UNIT_FIELDS}
    for notification in notifications:
        event = mapper.to_domain_event(notification)
        row = dict.fromkeys(_EVENT_FIELDS)
        row.update(position=notification.id, topic=notification.topic,
                   event_id=event_id_text(event.originator_id, event.originator_version),
                   occurred_at_us=_micros(event.timestamp))
        _describe(notification.topic, event, row, lines, units, fees)
        for name, value in row.items():
            events[name].append(value)
    return CommerceBatch(
        events=pa.table({name: pa.array(values, type=_EVENT_FIELDS[name]) for name, values in events.items()}),
        lines=pa.table({name: pa.array(values, type=_LINE_FIELDS[name]) for name, values in lines.items()}),
        units_back=pa.table({name: pa.array(values, type=_UNIT_FIELDS[name]) for name, values in units.items()}),
    )


def _describe(topic: str, event, row: dict, lines: dict, units: dict, fees: PaymentFees) -> None:
    """Fill `row` (and the order's lines, a refund's units) from one domain event."""
    aggregate_id = str(event.originator_id)
    if topic.startswith("trafi.product."):
        row["product_id"] = aggregate_id
        row["store_id"] = _text(getattr(event, "store_id", None))
        row["category"] = event.categories[0] if event.categories else None
    elif topic.startswith("trafi.cart."):
        row["cart_id"] = aggregate_id
        if topic == CART_CREATED:
            row.update(store_id=str(event.store_id), currency=event.currency, customer_id=_text(event.customer_id),
                       visitor_id=getattr(event, "visitor_id", None))
        elif topic == ITEM_ADDED:
            row.update(product_id=str(event.product_id), sku=event.sku, quantity=event.quantity,
                       amount_minor=event.unit_price)
        elif topic == "trafi.cart.buyer_identified.v1":
            row["customer_id"] = _text(event.customer_id)
        elif topic == "trafi.cart.shipping_address_set.v1":
            row["country"] = event.country
        elif topic == CHECKED_OUT:
            row["order_id"] = str(event.order_id)
    else:
        row["order_id"] = aggregate_id
        if topic == ORDER_PLACED:
            _placed(event, row, lines, fees)
        elif topic in (ORDER_PAID, REFUNDED):
            row["amount_minor"] = event.amount
        if topic == REFUNDED:
            for back in (getattr(event, "released", None), getattr(event, "restocked", None)):
                for sku, quantity in (back or {}).items():
                    units["position"].append(row["position"])
                    units["order_id"].append(aggregate_id)
                    units["sku"].append(sku)
                    units["quantity"].append(quantity)


def _placed(event, row: dict, lines: dict, fees: PaymentFees) -> None:
    totals = event.totals
    net = {line["sku"]: line["net"] for line in totals["lines"]}
    row.update(
        store_id=str(event.store_id), cart_id=str(event.cart_id), customer_id=_text(event.customer_id),
        currency=event.currency, country=event.country, amount_minor=totals["total"],
        revenue_minor=totals["total"] - totals["tax"], tax_minor=totals["tax"],
        cogs_minor=sum(line["unit_cost"] * line["quantity"] for line in event.lines),
        payment_fee_minor=fees.of(totals["total"]),
    )
    for line in event.lines:
        lines["order_id"].append(row["order_id"])
        lines["sku"].append(line["sku"])
        lines["product_id"].append(str(line["product_id"]))
        lines["quantity"].append(line["quantity"])
        lines["unit_cost_minor"].append(line["unit_cost"])
        lines["revenue_minor"].append(net[line["sku"]])


def apply_commerce(cur, batch: CommerceBatch, step: Step = lambda _: None) -> None:
    """Apply a decoded batch inside the caller's transaction (`start_deltas` already called)."""
    cur.register("commerce_events", batch.events)
    cur.register("commerce_lines", batch.lines)
    cur.register("commerce_units", batch.units_back)
    try:
        money = cur.execute(f"""
            SELECT count(*) FROM commerce_events
            WHERE topic IN ('{ORDER_PLACED}', '{ORDER_PAID}', '{REFUNDED}', '{PAYMENT_FAILED}')""").fetchall()[0][0]
        synced = experiment_tables.in_sync(cur) if money else True
        _products(cur)
        _carts_and_orders(cur)
        step("orders")
        _stage(cur)
        _cart_progress(cur)
        _payments(cur)
        _payment_failures(cur)
        _refunds(cur)
        if money:
            _experiment_activity(cur, synced)
        step("payments")
        apply_staged(cur, step)
    finally:
        for view in ("commerce_events", "commerce_lines", "commerce_units"):
            cur.unregister(view)


def _products(cur) -> None:
    touched = cur.execute(f"""
        SELECT count(*) FROM commerce_events WHERE topic IN ('{PRODUCT_CREATED}', '{PRODUCT_CHANGED}')""").fetchall()[0][0]
    if not touched:
        return
    cur.execute(f"""
        INSERT INTO products SELECT store_id, product_id, category FROM commerce_events
        WHERE topic = '{PRODUCT_CREATED}' ON CONFLICT DO NOTHING""")
    cur.execute(f"""
        UPDATE products SET category = c.category
        FROM (SELECT product_id, arg_max_null(category, position) AS category FROM commerce_events
              WHERE topic = '{PRODUCT_CHANGED}' GROUP BY product_id) c
        WHERE products.product_id = c.product_id""")
    # Storefront events may name a product before its creation reaches the warehouse, and a
    # category may change: the rows that carry a product's category follow the product.
    for table in ("events", "product_stats_by_period"):
        cur.execute(f"""
            UPDATE {table} SET category = p.category
            FROM (SELECT product_id, category FROM products WHERE product_id IN (
                    SELECT product_id FROM commerce_events WHERE topic LIKE 'trafi.product.%')) p
            WHERE {table}.product_id = p.product_id AND {table}.category IS DISTINCT FROM p.category""")


def _carts_and_orders(cur) -> None:
    cur.execute(f"""
        INSERT INTO carts BY NAME
        SELECT store_id, cart_id, coalesce(visitor_id, 'cart:' || cart_id) AS visitor_id,
               make_timestamp(occurred_at_us) AS created_at
        FROM commerce_events WHERE topic = '{CART_CREATED}'""")
    cur.execute(f"""
        INSERT INTO orders BY NAME
        SELECT e.store_id, e.order_id, e.cart_id, coalesce(k.visitor_id, 'cart:' || e.cart_id) AS visitor_id,
               e.customer_id, make_timestamp(e.occurred_at_us) AS placed_at,
               CAST(make_timestamp(e.occurred_at_us) AS DATE) AS day, e.currency, e.revenue_minor, e.tax_minor,
               e.cogs_minor, 0 AS discount_minor, 0 AS shipping_subsidy_minor, e.payment_fee_minor,
               0 AS refunded_minor
        FROM commerce_events e LEFT JOIN carts k ON k.cart_id = e.cart_id
        WHERE e.topic = '{ORDER_PLACED}'""")
    cur.execute("""
        INSERT INTO order_lines BY NAME
        SELECT o.store_id, l.order_id, l.sku, l.product_id, l.quantity, l.unit_cost_minor, l.revenue_minor
        FROM commerce_lines l JOIN orders o ON o.order_id = l.order_id""")


def _stage(cur) -> None:
    """`staged` from the batch's cart and order events, each with its store and visitor."""
    steps = " ".join(f"WHEN '{topic}' THEN {step}" for topic, step in STEP_OF_TOPIC.items() if step is not None)
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE staged AS
        SELECT coalesce(e.store_id, k.store_id, o.store_id) AS store_id, e.event_id, 'commerce' AS source,
               e.position, e.topic AS kind, make_timestamp(e.occurred_at_us) AS occurred_at,
               CAST(make_timestamp(e.occurred_at_us) AS DATE) AS day,
               CAST(CASE e.topic {steps} END AS TINYINT) AS funnel_step,
               coalesce(k.visitor_id, o.visitor_id) AS visitor_id, CAST(NULL AS VARCHAR) AS session_id,
               e.customer_id, CAST(NULL AS VARCHAR) AS device, e.country, CAST(NULL AS VARCHAR) AS traffic_source,
               e.product_id, e.sku, CAST(NULL AS VARCHAR) AS category, e.quantity, e.amount_minor, coalesce(e.currency, o.currency) AS currency,
               coalesce(e.cart_id, o.cart_id) AS cart_id, e.order_id, CAST(NULL AS VARCHAR) AS properties,
               CAST(NULL AS VARCHAR) AS url, CAST(NULL AS VARCHAR) AS referrer, CAST(NULL AS VARCHAR) AS variant
        FROM commerce_events e
        LEFT JOIN carts k ON k.cart_id = e.cart_id
        -- An order's events take what they lack from the order; a cart's "checked out" names an order
        -- that the same save placed, which may or may not be in this batch: it takes nothing from it.
        LEFT JOIN orders o ON o.order_id = e.order_id AND e.topic LIKE 'trafi.order.%'
        WHERE e.topic NOT LIKE 'trafi.product.%'
          AND coalesce(e.store_id, k.store_id, o.store_id) IS NOT NULL""")


def _cart_progress(cur) -> None:
    """Carts that got their first item (the abandonment cohort's day) and carts checked out."""
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE first_items AS
        SELECT k.store_id, k.cart_id, min(s.day) AS day
        FROM staged s JOIN carts k ON k.cart_id = s.cart_id
        WHERE s.kind = '{ITEM_ADDED}' AND k.first_item_day IS NULL
        GROUP BY k.store_id, k.cart_id""")
    cur.execute("UPDATE carts SET first_item_day = f.day FROM first_items f WHERE carts.cart_id = f.cart_id")
    cur.execute("""
        INSERT INTO metric_deltas (store_id, day, carts) SELECT store_id, day, count(*) FROM first_items GROUP BY ALL""")
    cur.execute(f"""
        UPDATE carts SET checked_out_at = s.occurred_at, order_id = s.order_id
        FROM staged s WHERE s.kind = '{CHECKED_OUT}' AND carts.cart_id = s.cart_id""")
    # Abandonment is a cohort rate: a checkout counts on the day its cart got its first item.
    cur.execute(f"""
        INSERT INTO metric_deltas (store_id, day, carts_checked_out)
        SELECT k.store_id, k.first_item_day, count(*)
        FROM staged s JOIN carts k ON k.cart_id = s.cart_id
        WHERE s.kind = '{CHECKED_OUT}' AND k.first_item_day IS NOT NULL
        GROUP BY ALL""")


def _payments(cur) -> None:
    """Orders paid in this batch: they count, with their lines, in the period they were placed."""
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE paid_now AS
        SELECT s.order_id, min(s.position) AS position, min(s.occurred_at) AS paid_at
        FROM staged s JOIN orders o ON o.order_id = s.order_id
        WHERE s.kind = '{ORDER_PAID}' AND o.paid_at IS NULL
        GROUP BY s.order_id""")
    cur.execute("UPDATE orders SET paid_at = p.paid_at FROM paid_now p WHERE orders.order_id = p.order_id")
    cur.execute("""
        INSERT INTO metric_deltas (store_id, day, orders, revenue_minor, gross_profit_minor)
        SELECT o.store_id, o.day, count(*), sum(o.revenue_minor - o.refunded_minor), sum(o.gross_profit_minor)
        FROM paid_now p JOIN order_profit o ON o.order_id = p.order_id
        GROUP BY ALL""")
    cur.execute("""
        INSERT INTO product_deltas (store_id, day, product_id, purchases, units_sold, revenue_minor)
        SELECT o.store_id, o.day, l.product_id, count(*), sum(l.quantity), sum(l.revenue_minor)
        FROM paid_now p JOIN orders o ON o.order_id = p.order_id JOIN order_lines l ON l.order_id = p.order_id
        GROUP BY ALL""")


def _payment_failures(cur) -> None:
    """Declined payments, with the order's visitor: what the checkout errors guardrail counts."""
    cur.execute(f"""
        INSERT INTO payment_failures BY NAME
        SELECT store_id, event_id, order_id, visitor_id, occurred_at AS failed_at
        FROM staged WHERE kind = '{PAYMENT_FAILED}' AND order_id IS NOT NULL""")


def _refunds(cur) -> None:
    """Refunds of paid orders, net of tax (the order's own net/gross ratio, rounded half up).

    Units a refund releases (not shipped) or restocks no longer cost the store anything.
    Money that goes back before the order was paid (a payment it could not take) was never
    revenue, so it is not subtracted.
    """
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE refunds_now AS
        SELECT s.order_id, s.position, o.store_id, o.day,
               CASE WHEN o.revenue_minor + o.tax_minor > 0
                    THEN CAST((2 * CAST(s.amount_minor AS HUGEINT) * o.revenue_minor + o.revenue_minor + o.tax_minor)
                              // (2 * (o.revenue_minor + o.tax_minor)) AS BIGINT)
                    ELSE 0 END AS refunded_minor
        FROM staged s JOIN orders o ON o.order_id = s.order_id LEFT JOIN paid_now p ON p.order_id = s.order_id
        WHERE s.kind = '{REFUNDED}' AND o.paid_at IS NOT NULL AND (p.position IS NULL OR p.position < s.position)""")
    cur.execute("""
        CREATE OR REPLACE TEMP TABLE refund_effects AS
        SELECT r.order_id, any_value(r.store_id) AS store_id, any_value(r.day) AS day,
               sum(r.refunded_minor) AS refunded_minor, coalesce(sum(b.cost_back), 0) AS cost_back
        FROM refunds_now r
        LEFT JOIN (SELECT u.position, sum(u.quantity * l.unit_cost_minor) AS cost_back
                   FROM commerce_units u JOIN order_lines l ON l.order_id = u.order_id AND l.sku = u.sku
                   GROUP BY u.position) b ON b.position = r.position
        GROUP BY r.order_id""")
    cur.execute("""
        UPDATE orders SET refunded_minor = orders.refunded_minor + e.refunded_minor,
                          cogs_minor = orders.cogs_minor - e.cost_back
        FROM refund_effects e WHERE orders.order_id = e.order_id""")
    cur.execute("""
        INSERT INTO metric_deltas (store_id, day, revenue_minor, gross_profit_minor)
        SELECT store_id, day, -sum(refunded_minor), sum(cost_back - refunded_minor) FROM refund_effects GROUP BY ALL""")


def _experiment_activity(cur, synced: bool) -> None:
    """The visitors whose paid orders, refunds or declined payments changed: their experiment activity
    rows are derived again (experiment_tables.py)."""
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE activity_visitors AS
        SELECT o.store_id, o.visitor_id FROM orders o
        WHERE o.order_id IN (SELECT order_id FROM paid_now UNION ALL SELECT order_id FROM refund_effects)
        UNION
        SELECT store_id, visitor_id FROM staged WHERE kind = '{PAYMENT_FAILED}' AND order_id IS NOT NULL""")
    experiment_tables.activity_changed(cur, "activity_visitors", synced)
