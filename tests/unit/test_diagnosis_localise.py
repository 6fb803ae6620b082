"""Locating a loss: segments, the most specific explanation, each segment against the rest, the worth of a fix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from autopilot.diagnosis.benchmarks import Range
from autopilot.diagnosis.counts import Economics, Period
from autopilot.diagnosis.impact import expected_impact
from autopilot.diagnosis.localise import flagged, most_specific, segment_gaps
from autopilot.diagnosis.segments import Segment, grouping_sets
from autopilot.diagnosis.settings import DiagnosisSettings
from autopilot.diagnosis.stats import Summary

STORE = Segment()
MOBILE = Segment.of(device="mobile")
FR = Segment.of(country="FR")
MOBILE_FR = Segment.of(country="FR", device="mobile")
DESKTOP_IT = Segment.of(device="desktop", country="IT")


def test_segments_have_a_stable_key_a_label_and_know_whom_they_share():
    assert MOBILE_FR.key == "device=mobile&country=FR" and MOBILE_FR.depth == 2
    assert MOBILE_FR.label == "mobile × FR" and STORE.label == "whole store"
    assert Segment.of(visitor_type="new", traffic_source="newsletter").label == "source newsletter × new visitors"
    assert Segment.from_dict(MOBILE_FR.as_dict()) == MOBILE_FR
    assert MOBILE_FR.overlaps(MOBILE) and MOBILE_FR.overlaps(STORE) and MOBILE.overlaps(FR)
    assert not MOBILE_FR.overlaps(DESKTOP_IT) and not MOBILE.overlaps(Segment.of(device="desktop"))
    with pytest.raises(ValueError):
        Segment.of(browser="firefox")
    assert len(grouping_sets()) == 1 + 4 + 6


@dataclass(frozen=True)
class Loss:
    segment: Segment
    excess: float
    drop: float = 0.1  # relative


def chosen(*losses: Loss) -> list[Segment]:
    return [c.segment for c in most_specific(losses, segment=lambda c: c.segment, excess=lambda c: c.excess,
                                             strength=lambda c: c.drop, share=0.6)]


def test_a_loss_confined_to_one_combination_is_pinned_on_it():
    assert chosen(Loss(STORE, 100), Loss(MOBILE, 96), Loss(FR, 93), Loss(MOBILE_FR, 90)) == [MOBILE_FR]


def test_of_two_equally_specific_segments_the_undiluted_drop_wins():
    new_fr = Segment.of(country="FR", visitor_type="new")  # overlaps mobile × FR: some of its loss, diluted
    assert chosen(Loss(FR, 28, 0.24), Loss(new_fr, 24, 0.29), Loss(MOBILE_FR, 23, 0.47)) == [MOBILE_FR]


def test_a_store_wide_loss_stays_with_the_store():
    assert chosen(Loss(STORE, 100), Loss(MOBILE, 50), Loss(FR, 21), Loss(MOBILE_FR, 11)) == [STORE]


def test_a_loss_of_one_dimension_is_not_narrowed_further():
    assert chosen(Loss(STORE, 100), Loss(MOBILE, 97), Loss(MOBILE_FR, 20)) == [MOBILE]


def test_two_separate_losses_are_both_found():
    assert chosen(Loss(MOBILE_FR, 60), Loss(DESKTOP_IT, 40), Loss(MOBILE, 58)) == [MOBILE_FR, DESKTOP_IT]


def reached(visitors: int, rate: float) -> np.ndarray:
    """Visitors reaching each step when the shipping step (4) converts at `rate`, the rest at 1."""
    at_shipping = visitors
    return np.array([visitors] * 5 + [round(at_shipping * rate)] * 2)


def test_segment_gaps_flag_the_segment_that_converts_worse_than_everyone_else():
    window = {
        STORE: reached(1000, 0.78),
        MOBILE_FR: reached(100, 0.40),  # the rest: 900 at ~0.82
        MOBILE: reached(500, 0.74),
        Segment.of(device="desktop"): reached(500, 0.82),
        Segment.of(country="DE"): reached(10, 0.0),  # too few visitors to be judged
    }
    gaps = segment_gaps(window, 4, DiagnosisSettings())
    assert {g.segment for g in gaps} == {MOBILE_FR, MOBILE, Segment.of(device="desktop")}
    assert all(g.tests == 3 and g.threshold == pytest.approx(1 - 0.01 / 3) for g in gaps)
    worse = flagged(gaps)
    assert {g.segment for g in worse} == {MOBILE_FR, MOBILE}  # mobile is worse because mobile × FR is in it
    mobile_fr = next(g for g in gaps if g.segment == MOBILE_FR)
    assert mobile_fr.excess == pytest.approx(100 * (0.82 - 0.40), abs=3)
    explained = most_specific(worse, segment=lambda g: g.segment, excess=lambda g: g.excess,
                              strength=lambda g: g.relative_gap, share=0.6)
    assert [g.segment for g in explained] == [MOBILE_FR]


def test_expected_impact_from_lost_visitors_to_gross_profit():
    impact = expected_impact(
        lost_per_day=Summary(median=4.0, low=2.0, high=6.0), recovery=Range(0.1, 0.25, 0.4), downstream=0.8,
        economics=Economics(orders=100, revenue_minor=650_000, gross_profit_minor=200_000, currency="EUR"),
        margin_cost_rate=0.0, visitors_per_day=1000, store_conversion=0.02, days_per_month=30.0,
    )
    assert impact.orders_per_month == pytest.approx((0.1 * 2 * 30 * 0.8, 0.25 * 4 * 30 * 0.8, 0.4 * 6 * 30 * 0.8))
    assert impact.gross_profit_minor_per_month == (round(4.8 * 2000), round(24 * 2000), round(57.6 * 2000))
    assert impact.conversion_uplift_pp[1] == pytest.approx(100 * 24 / 30_000)
    assert impact.conversion_uplift_relative[1] == pytest.approx(24 / 30_000 / 0.02)
    assert impact.as_dict()["gross_profit_per_month"]["currency"] == "EUR"


def test_impact_without_orders_has_no_money_and_a_discount_can_cost_more_than_it_brings():
    no_orders = expected_impact(
        lost_per_day=Summary(4.0, 2.0, 6.0), recovery=Range(0.1, 0.25, 0.4), downstream=0.8,
        economics=Economics(0, 0, 0, None), margin_cost_rate=0.0, visitors_per_day=1000, store_conversion=0.0,
        days_per_month=30.0,
    )
    assert no_orders.gross_profit_minor_per_month is None and no_orders.typical_profit is None
    assert no_orders.conversion_uplift_relative is None and no_orders.orders_per_month[1] > 0
    thin = expected_impact(
        lost_per_day=Summary(4.0, 2.0, 6.0), recovery=Range(0.1, 0.25, 0.4), downstream=0.8,
        economics=Economics(orders=10, revenue_minor=60_000, gross_profit_minor=3_000, currency="EUR"),
        margin_cost_rate=0.10, visitors_per_day=1000, store_conversion=0.02, days_per_month=30.0,
    )
    low, typical, high = thin.gross_profit_minor_per_month
    assert low <= typical <= high < 0  # 300 profit − 600 discount per order: a loss, never recommended


def test_period_windows():
    from datetime import date

    period = Period.ending(date(2026, 3, 31), recent_days=7, baseline_days=28)
    assert (period.recent_start, period.recent_end) == (date(2026, 3, 25), date(2026, 3, 31))
    assert (period.baseline_start, period.baseline_end) == (date(2026, 2, 25), date(2026, 3, 24))
    assert period.recent_days == 7 and period.baseline_days == 28


def test_a_big_segment_does_not_take_a_store_wide_drop_that_its_rest_shares():
    new = Segment.of(visitor_type="new")  # 70 % of the store, so ~70 % of any store-wide loss
    complement_drop = {new: 0.19}  # returning visitors dropped as much: the loss is not new visitors'
    losses = [Loss(STORE, 100, 0.2), Loss(new, 72, 0.2)]

    def pick(drops):
        return [c.segment for c in most_specific(
            losses, segment=lambda c: c.segment, excess=lambda c: c.excess, strength=lambda c: c.drop, share=0.6,
            confined=lambda inner, outer: drops[inner.segment] <= 0.5 * inner.drop)]

    assert pick(complement_drop) == [STORE]
    assert pick({new: 0.01}) == [new]  # had the returning ones held up, it would be new visitors'


def test_complement_drop_reads_the_rest_of_the_outer_segment():
    from autopilot.diagnosis.counts import FunnelCounts
    from autopilot.diagnosis.localise import complement_drop

    counts = FunnelCounts(
        recent={STORE: reached(1000, 0.70), MOBILE_FR: reached(200, 0.40)},
        baseline={STORE: reached(4000, 0.80), MOBILE_FR: reached(800, 0.80)},
    )
    rest = complement_drop(counts, 4, STORE, MOBILE_FR, DiagnosisSettings())
    # the rest: 800 recent visitors at (700 − 80) / 800 = 0.775 against 0.80
    assert rest == pytest.approx(1 - 0.775 / 0.80, abs=0.005)
    tiny = FunnelCounts(recent={STORE: reached(210, 0.7), MOBILE_FR: reached(200, 0.4)},
                        baseline={STORE: reached(900, 0.8), MOBILE_FR: reached(800, 0.8)})
    assert complement_drop(tiny, 4, STORE, MOBILE_FR, DiagnosisSettings()) is None
