"""Store dashboard: revenue, orders, average order value, top products, new vs returning customers.

For today, this week (ISO, from Monday) and this month in the merchant's time
zone, each compared with the previous period (see queries/periods.py for the
windows). Read model `dashboard_metrics`.

Definitions (also in docs/read-models.md):
* An order belongs to the period in which it was **placed**, and **counts** once
  it is paid, unless it was later cancelled or refunded in full.
* **Revenue**: Σ over counted orders of (order total − amount refunded so far).
  The total is what the buyer paid: goods, shipping and tax. A partial refund
  lowers the revenue of the period the order was placed in.
* **Orders**: the number of counted orders. **Average order value**: revenue ÷
  orders, rounded half up to a whole minor unit (0 without orders).
* **Top products**: products by the gross value (tax included) of their lines in
  counted orders, before refunds (refunds are per order, not per product).
* **New customers**: customers with a counted order in the period whose first
  order ever (of any status) was placed in the period; **returning**: the other
  customers with a counted order in the period.
The figures reflect the read model as it stands: `now` only fixes the windows.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from uuid import UUID

from commands.context import StoreContext
from domain.errors import InvalidValue, NotFound
from domain.money import Rounding, round_minor
from projections.read_models.dashboard import COUNTED_ORDER, ORDER_REVENUE
from projections.read_models.timestamps import utc_text
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel
from queries.moments import require_aware
from queries.periods import PERIODS, Comparison, Period, PeriodName, Window, period, time_zone

DEFAULT_TOP_PRODUCTS = 5
MAX_TOP_PRODUCTS = 50
COMPARISONS = ("same_point", "full")
_IN_WINDOW = "o.store_id = %s AND o.placed_at >= %s AND o.placed_at < %s AND " + COUNTED_ORDER


class Change(QueryModel):
    current: int
    previous: int
    change: int  # current − previous
    change_percent: float | None  # one decimal; None when the previous value is 0

    @classmethod
    def of(cls, current: int, previous: int) -> Change:
        percent = round((current - previous) * 100 / previous, 1) if previous else None
        return cls(current=current, previous=previous, change=current - previous, change_percent=percent)


class TopProduct(QueryModel):
    product_id: UUID
    title: str
    units: int
    revenue: int
    previous_units: int
    previous_revenue: int


class PeriodMetrics(QueryModel):
    period: PeriodName
    start: datetime  # UTC; the window is [start, end)
    end: datetime
    previous_start: datetime
    previous_end: datetime
    revenue: Change
    orders: Change
    average_order_value: Change
    new_customers: Change
    returning_customers: Change
    top_products: tuple[TopProduct, ...]


class Dashboard(QueryModel):
    store_id: UUID
    currency: str
    now: datetime
    tz: str
    compare: str
    today: PeriodMetrics
    this_week: PeriodMetrics
    this_month: PeriodMetrics


def average(revenue: int, orders: int) -> int:
    return round_minor(Decimal(revenue) / Decimal(orders), Rounding.HALF_UP) if orders else 0


def _window_params(store_id: str, window: Window) -> tuple[str, str, str]:
    return store_id, utc_text(window.start), utc_text(window.end)


def _sales(tx, store_id: str, window: Window) -> tuple[int, int]:
    """(revenue, orders) of the window."""
    count, revenue = tx.execute(
        f"SELECT COUNT(*), COALESCE(SUM({ORDER_REVENUE}), 0) FROM rm_dashboard_orders o WHERE {_IN_WINDOW}",
        _window_params(store_id, window),
    ).fetchone()
    return int(revenue), int(count)  # PostgreSQL sums BIGINT as NUMERIC


def _customers(tx, store_id: str, window: Window) -> tuple[int, int]:
    """(new, returning) among the customers with a counted order in the window."""
    # A customer's first order is at or before any of their orders in the window, so it
    # lies in the window exactly when it is not before the window's start.
    total, new = tx.execute(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN w.first_at >= %s THEN 1 ELSE 0 END), 0) FROM ("
        "SELECT o.customer_id, (SELECT MIN(f.placed_at) FROM rm_dashboard_orders f "
        "WHERE f.store_id = o.store_id AND f.customer_id = o.customer_id) AS first_at "
        f"FROM rm_dashboard_orders o WHERE {_IN_WINDOW} AND o.customer_id IS NOT NULL "
        "GROUP BY o.store_id, o.customer_id) w",
        (utc_text(window.start), *_window_params(store_id, window)),
    ).fetchone()
    return int(new), int(total) - int(new)


def _product_sales(tx, store_id: str, window: Window, *, limit: int | None = None,
                   only: list[str] | None = None) -> list[tuple[str, str, int, int]]:
    """(product id, title, units, revenue) per product, best first (product id breaks ties)."""
    params: list = list(_window_params(store_id, window))
    restrict = ""
    if only is not None:
        restrict = f" AND l.product_id IN ({', '.join(['%s'] * len(only))})"
        params += only
    rows = tx.execute(
        "SELECT l.product_id, COALESCE(MAX(p.title), ''), SUM(l.quantity), SUM(l.gross) "
        "FROM rm_dashboard_lines l JOIN rm_dashboard_orders o ON o.order_id = l.order_id "
        "LEFT JOIN rm_dashboard_products p ON p.product_id = l.product_id "
        f"WHERE {_IN_WINDOW}{restrict} GROUP BY l.product_id "
        "ORDER BY SUM(l.gross) DESC, l.product_id" + (" LIMIT %s" if limit is not None else ""),
        (*params, *([limit] if limit is not None else [])),
    ).fetchall()
    return [(product_id, title, int(units), int(revenue)) for product_id, title, units, revenue in rows]


def _top_products(tx, store_id: str, current: Window, previous: Window, limit: int) -> tuple[TopProduct, ...]:
    top = _product_sales(tx, store_id, current, limit=limit)
    if not top:
        return ()
    before = {
        product_id: (units, revenue)
        for product_id, _, units, revenue in _product_sales(tx, store_id, previous, only=[row[0] for row in top])
    }
    return tuple(
        TopProduct(
            product_id=UUID(product_id), title=title, units=units, revenue=revenue,
            previous_units=before.get(product_id, (0, 0))[0], previous_revenue=before.get(product_id, (0, 0))[1],
        )
        for product_id, title, units, revenue in top
    )


def _period_metrics(tx, store_id: str, name: PeriodName, span: Period, top: int) -> PeriodMetrics:
    revenue, orders = _sales(tx, store_id, span.current)
    previous_revenue, previous_orders = _sales(tx, store_id, span.previous)
    new, returning = _customers(tx, store_id, span.current)
    previous_new, previous_returning = _customers(tx, store_id, span.previous)
    return PeriodMetrics(
        period=name, start=span.current.start, end=span.current.end,
        previous_start=span.previous.start, previous_end=span.previous.end,
        revenue=Change.of(revenue, previous_revenue),
        orders=Change.of(orders, previous_orders),
        average_order_value=Change.of(average(revenue, orders), average(previous_revenue, previous_orders)),
        new_customers=Change.of(new, previous_new),
        returning_customers=Change.of(returning, previous_returning),
        top_products=_top_products(tx, store_id, span.current, span.previous, top),
    )


class DashboardQueries(ReadModelQueries):
    projection_name = "dashboard_metrics"

    def metrics(
        self, ctx: StoreContext, *, now: datetime | None = None, tz: str = "UTC", compare: Comparison = "same_point",
        top_products: int = DEFAULT_TOP_PRODUCTS,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Dashboard:
        now = datetime.now(timezone.utc) if now is None else require_aware("now", now)
        zone = time_zone(tz)
        if compare not in COMPARISONS:
            raise InvalidValue("compare", f"one of {', '.join(COMPARISONS)}", code="query.invalid_comparison")
        if type(top_products) is not int or not 1 <= top_products <= MAX_TOP_PRODUCTS:
            raise InvalidValue("top_products", f"must be between 1 and {MAX_TOP_PRODUCTS}", code="query.invalid_limit")
        store_id = str(ctx.store_id)
        with self.reading(min_position, timeout_s) as tx:
            store = tx.execute("SELECT currency FROM rm_dashboard_stores WHERE store_id = %s", (store_id,)).fetchone()
            if store is None:
                raise NotFound("store", ctx.store_id)
            periods = {
                name: _period_metrics(tx, store_id, name, period(name, now, zone, compare), top_products)
                for name in PERIODS
            }
        return Dashboard(store_id=ctx.store_id, currency=store[0], now=now, tz=tz, compare=compare, **periods)
