"""Reading the warehouse: the funnel, one step's breakdown by segment, and the store overview.

Pure functions of a DuckDB cursor and their arguments, used by the analytics routes and by the
benchmark alike. Dates are inclusive UTC days.

Units (docs/analytics.md):
* the funnel counts visitor-days: a visitor reached step k on a day when the furthest step they
  got to that day is ≥ k, so every count is at most the one before it; a visitor who comes on
  three days of the range counts three times. Unfiltered, it is the sum of the incremental
  `funnel_by_period` day rows; with a device/country/source filter it counts `visitor_days`
  (whose segment is the visitor's on that day).
* the overview's visitors are distinct visitors in the range; its money is the orders paid,
  counted on the day they were placed, net of tax and of refunds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from autopilot.warehouse.schema import FUNNEL_STEPS
from queries.model import QueryModel

SEGMENT_COLUMNS = {"device": "device", "country": "country", "source": "traffic_source", "returning": "is_returning"}
UNKNOWN = "unknown"  # a visitor-day without that segment (no event said it)
DEFAULT_TOP_PRODUCTS = 5


@dataclass(frozen=True)
class Window:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def before(self) -> Window:
        """The period of equal length just before this one."""
        return Window(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


@dataclass(frozen=True)
class Filters:
    device: str | None = None
    country: str | None = None
    source: str | None = None

    def sql(self) -> tuple[str, list]:
        """Conditions on visitor_days (AND-joined, leading AND) and their parameters."""
        conditions, params = [], []
        for name, value in (("device", self.device), ("country", self.country), ("traffic_source", self.source)):
            if value is not None:
                conditions.append(f" AND {name} = ?")
                params.append(value)
        return "".join(conditions), params

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.device, self.country, self.source))


def _pct(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(part * 100 / whole, 2)


# --- the funnel ------------------------------------------------------------------------------------

class FunnelStep(QueryModel):
    step: str
    visitors: int  # visitor-days that reached this step
    conversion_pct: float | None  # of those that reached the previous step (None for the first)
    conversion_from_start_pct: float | None
    drop_off: int  # reached the previous step, not this one
    drop_off_pct: float | None


class FunnelScope(QueryModel):
    """What a funnel answer covers: the store, the dates, the filters and the unit counted."""
    store_id: str
    date_from: date
    date_to: date
    device: str | None
    country: str | None
    source: str | None
    unit: str = "visitor_day"


class Funnel(FunnelScope):
    steps: tuple[FunnelStep, ...]


def reach_counts(cur, store_id: str, window: Window, filters: Filters = Filters()) -> list[int]:
    """Visitor-days per funnel step that reached it, in FUNNEL_STEPS order."""
    if not filters.any:
        rows = cur.execute(
            "SELECT step, sum(visitors) FROM funnel_by_period WHERE store_id = ? AND grain = 'day' "
            "AND period_start BETWEEN ? AND ? GROUP BY step", [store_id, window.start, window.end]).fetchall()
        found = dict(rows)
        return [int(found.get(k, 0)) for k in range(len(FUNNEL_STEPS))]
    where, params = filters.sql()
    columns = ", ".join(f"count(*) FILTER (WHERE max_step >= {k})" for k in range(len(FUNNEL_STEPS)))
    row = cur.execute(
        f"SELECT {columns} FROM visitor_days WHERE store_id = ? AND day BETWEEN ? AND ?{where}",
        [store_id, window.start, window.end, *params]).fetchall()[0]
    return [int(v) for v in row]


def funnel(cur, store_id: str, window: Window, filters: Filters = Filters()) -> Funnel:
    counts = reach_counts(cur, store_id, window, filters)
    steps = []
    for k, name in enumerate(FUNNEL_STEPS):
        previous = counts[k - 1] if k else None
        drop = (previous - counts[k]) if previous is not None else 0
        steps.append(FunnelStep(
            step=name, visitors=counts[k], conversion_pct=_pct(counts[k], previous),
            conversion_from_start_pct=_pct(counts[k], counts[0]), drop_off=drop,
            drop_off_pct=_pct(drop, previous) if previous is not None else None,
        ))
    return Funnel(store_id=store_id, date_from=window.start, date_to=window.end, device=filters.device,
                  country=filters.country, source=filters.source, steps=tuple(steps))


class SegmentReach(QueryModel):
    segment: str
    visitors: int  # visitor-days of this segment that reached the step
    previous_step_visitors: int | None  # … that reached the step before (None for the first step)
    conversion_pct: float | None
    drop_off: int
    drop_off_pct: float | None


class FunnelBreakdown(FunnelScope):
    step: str
    previous_step: str | None
    by: str
    segments: tuple[SegmentReach, ...]  # most visitors first


def funnel_breakdown(cur, store_id: str, window: Window, step: str, by: str,
                     filters: Filters = Filters()) -> FunnelBreakdown:
    """One step's reach, conversion into it and drop-off before it, per segment value."""
    k = FUNNEL_STEPS.index(step)
    column = SEGMENT_COLUMNS[by]
    label = ("CASE WHEN is_returning THEN 'returning' ELSE 'new' END" if by == "returning"
             else f"coalesce({column}, '{UNKNOWN}')")
    previous = f"count(*) FILTER (WHERE max_step >= {k - 1})" if k else "NULL"
    where, params = filters.sql()
    rows = cur.execute(
        f"SELECT {label} AS segment, count(*) FILTER (WHERE max_step >= {k}) AS reached, {previous} AS previous "
        f"FROM visitor_days WHERE store_id = ? AND day BETWEEN ? AND ?{where} "
        f"GROUP BY segment ORDER BY reached DESC, previous DESC NULLS LAST, segment",
        [store_id, window.start, window.end, *params]).fetchall()
    segments = []
    for segment, reached, before in rows:
        drop = before - reached if before is not None else 0
        segments.append(SegmentReach(
            segment=segment, visitors=reached, previous_step_visitors=before, conversion_pct=_pct(reached, before),
            drop_off=drop, drop_off_pct=_pct(drop, before) if before is not None else None,
        ))
    return FunnelBreakdown(
        store_id=store_id, date_from=window.start, date_to=window.end, device=filters.device,
        country=filters.country, source=filters.source, step=step, previous_step=FUNNEL_STEPS[k - 1] if k else None,
        by=by, segments=tuple(segments),
    )


# --- the overview ------------------------------------------------------------------------------------

class Change(QueryModel):
    current: int
    previous: int
    change: int
    change_pct: float | None  # None when the previous value is 0


class RateChange(QueryModel):
    current_pct: float | None  # None when undefined (nothing to divide by)
    previous_pct: float | None
    change_points: float | None  # percentage points


class ProductStats(QueryModel):
    product_id: str
    category: str | None
    views: int
    add_to_carts: int
    purchases: int  # order lines in paid orders
    units_sold: int
    revenue_minor: int  # net of tax, before refunds
    add_to_cart_pct: float | None  # of views
    purchase_pct: float | None  # of views


class CategoryStats(QueryModel):
    category: str | None
    views: int
    add_to_carts: int
    purchases: int
    units_sold: int
    revenue_minor: int
    add_to_cart_pct: float | None
    purchase_pct: float | None


class Overview(QueryModel):
    store_id: str
    date_from: date
    date_to: date
    previous_from: date
    previous_to: date
    currency: str | None  # of the store's orders; None before the first
    visitors: Change
    sessions: Change
    page_views: Change
    orders: Change
    revenue_minor: Change
    average_order_value_minor: Change
    gross_profit_minor: Change
    conversion_rate: RateChange  # visitors who completed a checkout, of visitors
    margin: RateChange  # gross profit of revenue
    cart_abandonment_rate: RateChange  # carts that got an item and were not checked out, of those carts
    top_products: tuple[ProductStats, ...]
    top_categories: tuple[CategoryStats, ...]


@dataclass(frozen=True)
class _Totals:
    visitors: int
    converted: int
    sessions: int
    page_views: int
    carts: int
    carts_checked_out: int
    orders: int
    revenue: int
    profit: int

    @property
    def average_order_value(self) -> int:
        return (2 * self.revenue + self.orders) // (2 * self.orders) if self.orders else 0  # half up


def _totals(cur, store_id: str, window: Window) -> _Totals:
    visitors, converted = cur.execute(
        f"SELECT count(DISTINCT visitor_id), count(DISTINCT visitor_id) FILTER (WHERE max_step >= {len(FUNNEL_STEPS) - 1}) "
        "FROM visitor_days WHERE store_id = ? AND day BETWEEN ? AND ?", [store_id, window.start, window.end]).fetchall()[0]
    sums = cur.execute(
        "SELECT coalesce(sum(sessions), 0), coalesce(sum(page_views), 0), coalesce(sum(carts), 0), "
        "coalesce(sum(carts_checked_out), 0), coalesce(sum(orders), 0), coalesce(sum(revenue_minor), 0), "
        "coalesce(sum(gross_profit_minor), 0) FROM metrics_by_period "
        "WHERE store_id = ? AND grain = 'day' AND period_start BETWEEN ? AND ?",
        [store_id, window.start, window.end]).fetchall()[0]
    return _Totals(int(visitors), int(converted), *(int(v) for v in sums))


def _change(current: int, previous: int) -> Change:
    return Change(current=current, previous=previous, change=current - previous,
                  change_pct=round((current - previous) * 100 / previous, 2) if previous else None)


def _rate(current: float | None, previous: float | None) -> RateChange:
    points = round(current - previous, 2) if current is not None and previous is not None else None
    return RateChange(current_pct=current, previous_pct=previous, change_points=points)


def _abandonment(t: _Totals) -> float | None:
    return _pct(t.carts - t.carts_checked_out, t.carts)


_PRODUCT_SUMS = ("coalesce(sum(views), 0), coalesce(sum(add_to_carts), 0), coalesce(sum(purchases), 0), "
                 "coalesce(sum(units_sold), 0), coalesce(sum(revenue_minor), 0)")


def top_products(cur, store_id: str, window: Window, limit: int = DEFAULT_TOP_PRODUCTS) -> list[ProductStats]:
    rows = cur.execute(
        f"SELECT product_id, any_value(category), {_PRODUCT_SUMS} FROM product_stats_by_period "
        "WHERE store_id = ? AND grain = 'day' AND period_start BETWEEN ? AND ? "
        "GROUP BY product_id ORDER BY 7 DESC, 6 DESC, 3 DESC, product_id LIMIT ?",
        [store_id, window.start, window.end, limit]).fetchall()
    return [ProductStats(product_id=p, category=c, views=v, add_to_carts=a, purchases=b, units_sold=u, revenue_minor=r,
                         add_to_cart_pct=_pct(a, v), purchase_pct=_pct(b, v))
            for p, c, v, a, b, u, r in rows]


def top_categories(cur, store_id: str, window: Window, limit: int = DEFAULT_TOP_PRODUCTS) -> list[CategoryStats]:
    rows = cur.execute(
        f"SELECT category, {_PRODUCT_SUMS} FROM product_stats_by_period "
        "WHERE store_id = ? AND grain = 'day' AND period_start BETWEEN ? AND ? "
        "GROUP BY category ORDER BY 6 DESC, 5 DESC, 2 DESC, category NULLS LAST LIMIT ?",
        [store_id, window.start, window.end, limit]).fetchall()
    return [CategoryStats(category=c, views=v, add_to_carts=a, purchases=b, units_sold=u, revenue_minor=r,
                          add_to_cart_pct=_pct(a, v), purchase_pct=_pct(b, v))
            for c, v, a, b, u, r in rows]


def overview(cur, store_id: str, window: Window, *, top: int = DEFAULT_TOP_PRODUCTS) -> Overview:
    before = window.before()
    now, then = _totals(cur, store_id, window), _totals(cur, store_id, before)
    currency = cur.execute("SELECT min(currency) FROM orders WHERE store_id = ?", [store_id]).fetchall()[0][0]
    return Overview(
        store_id=store_id, date_from=window.start, date_to=window.end, previous_from=before.start,
        previous_to=before.end, currency=currency,
        visitors=_change(now.visitors, then.visitors), sessions=_change(now.sessions, then.sessions),
        page_views=_change(now.page_views, then.page_views), orders=_change(now.orders, then.orders),
        revenue_minor=_change(now.revenue, then.revenue),
        average_order_value_minor=_change(now.average_order_value, then.average_order_value),
        gross_profit_minor=_change(now.profit, then.profit),
        conversion_rate=_rate(_pct(now.converted, now.visitors), _pct(then.converted, then.visitors)),
        margin=_rate(_pct(now.profit, now.revenue), _pct(then.profit, then.revenue)),
        cart_abandonment_rate=_rate(_abandonment(now), _abandonment(then)),
        top_products=tuple(top_products(cur, store_id, window, top)),
        top_categories=tuple(top_categories(cur, store_id, window, top)),
    )
