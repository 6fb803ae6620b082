"""What fixing a finding is worth: recovered visitors → orders → gross profit per month, with a range.

expected orders = recovery share × lost visitors per day × days per month × downstream conversion
(from the step after the lost one to a completed order). Each order is worth the store's gross
profit per paid order, less what the playbook gives away (a discount's share of revenue). The
range multiplies the ends of both uncertain factors: the low recovery share with the low end of
the gap's credible interval, the high with the high.
"""

from __future__ import annotations

from dataclasses import dataclass

from autopilot.diagnosis.benchmarks import Range
from autopilot.diagnosis.counts import Economics
from autopilot.diagnosis.stats import Summary


@dataclass(frozen=True)
class Impact:
    orders_per_month: tuple[float, float, float]  # low, typical, high
    gross_profit_minor_per_month: tuple[int, int, int] | None  # None: no paid orders to value one by
    currency: str | None
    conversion_uplift_pp: tuple[float, float, float]  # percentage points of the store's conversion
    conversion_uplift_relative: tuple[float, float, float] | None  # of the store's conversion

    @property
    def typical_profit(self) -> int | None:
        return None if self.gross_profit_minor_per_month is None else self.gross_profit_minor_per_month[1]

    def as_dict(self) -> dict:
        def triple(values, digits):
            return None if values is None else dict(zip(("low", "typical", "high"), (round(v, digits) for v in values)))

        return {
            "gross_profit_per_month": (None if self.gross_profit_minor_per_month is None else
                                       {**dict(zip(("low", "typical", "high"), self.gross_profit_minor_per_month)),
                                        "currency": self.currency}),
            "orders_per_month": triple(self.orders_per_month, 1),
            "conversion_uplift_pp": triple(self.conversion_uplift_pp, 4),
            "conversion_uplift_relative": triple(self.conversion_uplift_relative, 4),
        }


def expected_impact(*, lost_per_day: Summary, recovery: Range, downstream: float, economics: Economics,
                    margin_cost_rate: float, visitors_per_day: float, store_conversion: float,
                    days_per_month: float) -> Impact:
    lost = (max(lost_per_day.low, 0.0), max(lost_per_day.median, 0.0), max(lost_per_day.high, 0.0))
    shares = (recovery.low, recovery.typical, recovery.high)
    orders = tuple(share * visitors * days_per_month * downstream for share, visitors in zip(shares, lost))
    profit = None
    if economics.orders:
        per_order = economics.profit_per_order - margin_cost_rate * economics.revenue_per_order
        profit = tuple(sorted(int(round(o * per_order)) for o in orders))  # a loss per order flips the ends
    visitors_per_month = visitors_per_day * days_per_month
    uplift_pp = tuple(100.0 * o / visitors_per_month if visitors_per_month else 0.0 for o in orders)
    relative = (tuple(pp / (100.0 * store_conversion) for pp in uplift_pp) if store_conversion > 0 else None)
    return Impact(orders, profit, economics.currency, uplift_pp, relative)
