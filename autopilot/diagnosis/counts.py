"""What the diagnosis reads from the warehouse: funnel counts per window and segment, and order economics.

The only I/O of the diagnosis' statistics: three queries over `visitor_days` and `order_profit`
(autopilot/warehouse/schema.py). "Reached step k" is `max_step >= k`, so counts never grow
along the funnel. Segments with a missing value are counted under "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from autopilot.diagnosis.segments import DIMENSIONS, Segment, grouping_sets
from autopilot.warehouse.schema import FUNNEL_STEPS

STEPS = len(FUNNEL_STEPS)


@dataclass(frozen=True)
class Period:
    """The baseline window, then the recent window right after it; both inclusive, whole days."""

    baseline_start: date
    baseline_end: date
    recent_start: date
    recent_end: date

    @classmethod
    def ending(cls, last_day: date, recent_days: int = 7, baseline_days: int = 28) -> Period:
        recent_start = last_day - timedelta(days=recent_days - 1)
        baseline_end = recent_start - timedelta(days=1)
        return cls(baseline_end - timedelta(days=baseline_days - 1), baseline_end, recent_start, last_day)

    @property
    def recent_days(self) -> int:
        return (self.recent_end - self.recent_start).days + 1

    @property
    def baseline_days(self) -> int:
        return (self.baseline_end - self.baseline_start).days + 1

    def as_dict(self) -> dict:
        return {"baseline_start": self.baseline_start.isoformat(), "baseline_end": self.baseline_end.isoformat(),
                "recent_start": self.recent_start.isoformat(), "recent_end": self.recent_end.isoformat()}


@dataclass
class FunnelCounts:
    """Visitors who reached each step (index = FUNNEL_STEPS), per window and segment."""

    recent: dict[Segment, np.ndarray] = field(default_factory=dict)
    baseline: dict[Segment, np.ndarray] = field(default_factory=dict)
    daily: np.ndarray = field(default_factory=lambda: np.zeros((0, STEPS)))  # whole store, a row per day with data
    daily_in_baseline: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def reached(self, window: str, segment: Segment) -> np.ndarray:
        return getattr(self, window).get(segment, np.zeros(STEPS, dtype=np.int64))

    @property
    def baseline_days_with_data(self) -> int:
        return int(self.daily_in_baseline.sum())

    @property
    def recent_days_with_data(self) -> int:
        return int((~self.daily_in_baseline).sum())


@dataclass(frozen=True)
class Economics:
    """Paid orders of a period: what one more order is worth."""

    orders: int
    revenue_minor: int
    gross_profit_minor: int
    currency: str | None

    @property
    def revenue_per_order(self) -> float | None:
        return self.revenue_minor / self.orders if self.orders else None

    @property
    def profit_per_order(self) -> float | None:
        return self.gross_profit_minor / self.orders if self.orders else None


def _reached_columns() -> str:
    return ", ".join(f"count(*) FILTER (WHERE max_step >= {k}) AS reached_{k}" for k in range(STEPS))


_SEGMENT_COLUMNS = """
    coalesce(device, 'unknown') AS device, coalesce(country, 'unknown') AS country,
    coalesce(traffic_source, 'unknown') AS traffic_source,
    CASE WHEN is_returning THEN 'returning' ELSE 'new' END AS visitor_type"""


def read_counts(con, store_id: str, period: Period) -> FunnelCounts:
    sets = ", ".join("(" + ", ".join(("win", *combo)) + ")" for combo in grouping_sets())
    groupings = ", ".join(f"grouping({d})" for d in DIMENSIONS)
    rows = con.execute(
        f"""
        WITH v AS (
            SELECT CASE WHEN day >= ? THEN 'recent' ELSE 'baseline' END AS win, {_SEGMENT_COLUMNS}, max_step
            FROM visitor_days WHERE store_id = ? AND day BETWEEN ? AND ?
        )
        SELECT win, {", ".join(DIMENSIONS)}, {groupings}, {_reached_columns()}
        FROM v GROUP BY GROUPING SETS ({sets})
        """,
        [period.recent_start, str(store_id), period.baseline_start, period.recent_end],
    ).fetchall()
    counts = FunnelCounts()
    n_dims = len(DIMENSIONS)
    for row in rows:
        window, values, grouped_out, reached = row[0], row[1:1 + n_dims], row[1 + n_dims:1 + 2 * n_dims], row[1 + 2 * n_dims:]
        segment = Segment(tuple((d, v) for d, v, out in zip(DIMENSIONS, values, grouped_out) if not out))
        getattr(counts, window)[segment] = np.array(reached, dtype=np.int64)
    daily = con.execute(
        f"""SELECT day, {_reached_columns()} FROM visitor_days WHERE store_id = ? AND day BETWEEN ? AND ?
            GROUP BY day ORDER BY day""",
        [str(store_id), period.baseline_start, period.recent_end],
    ).fetchall()
    counts.daily = np.array([row[1:] for row in daily], dtype=np.int64).reshape(-1, STEPS)
    counts.daily_in_baseline = np.array([row[0] <= period.baseline_end for row in daily], dtype=bool)
    return counts


def read_economics(con, store_id: str, start: date, end: date) -> Economics:
    """Paid orders placed in [start, end], in the store's main currency (the one most orders use)."""
    row = con.execute(
        """SELECT currency, count(*), sum(revenue_minor - refunded_minor), sum(gross_profit_minor)
           FROM order_profit WHERE store_id = ? AND day BETWEEN ? AND ? AND paid_at IS NOT NULL
           GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1""",
        [str(store_id), start, end],
    ).fetchone()
    if row is None:
        return Economics(0, 0, 0, None)
    currency, orders, revenue, profit = row
    return Economics(int(orders), int(revenue or 0), int(profit or 0), currency)


def stores_with_data(con, since: date, until: date) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT store_id FROM visitor_days WHERE day BETWEEN ? AND ? ORDER BY store_id", [since, until]
    ).fetchall()
    return [row[0] for row in rows]
