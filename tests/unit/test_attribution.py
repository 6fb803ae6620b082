"""Conservative attribution (§8): lower bound × baseline × treated traffic, rounded down, per currency."""

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot.attribution import (
    COUNTED,
    EXCEEDS_HOLDOUT,
    EXCEEDS_HOLDOUT_UPPER,
    LOWER_BOUND_NOT_POSITIVE,
    NO_LOWER_BOUND,
    NOT_PROVEN,
    OUTSIDE_PERIOD,
    ChangeSetResult,
    attributed_uplift,
    cumulative_improvement,
    holdout_cross_check,
)

START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 31, tzinfo=UTC)


def _result(cid="cs-1", *, state="PROVEN", proven_at=START, lower=0.03, point=0.05, baseline=250.0,
            visitors=1000.0, currency="EUR"):
    return ChangeSetResult(cid, state, proven_at, lower, baseline, visitors, currency, point)


def test_lower_bound_times_baseline_times_treated_traffic_rounded_down():
    report = attributed_uplift([_result(lower=0.031, baseline=250.0, visitors=1000.0)], START, END)
    (item,) = report.items
    # 0.031 × 250 minor units × 1000 visitors/day × 30 days ≈ 232 500, with the float 0.031 taken exactly
    assert item.reason == COUNTED and item.days == 30.0
    assert item.uplift_minor == math.floor(Fraction(0.031) * 250 * 1000 * 30) in (232_499, 232_500)
    assert isinstance(item.uplift_minor, int)
    assert report.total("EUR") == item.uplift_minor
    assert item.point_estimate_minor == 375_000


def test_rounds_down_fractions_of_a_minor_unit():
    report = attributed_uplift([_result(lower=0.5, baseline=1.0, visitors=1.0)], START, START + timedelta(hours=36))
    assert report.items[0].uplift_minor == 0  # 0.5 × 1 × 1 × 1.5 days = 0.75 → 0


def test_counts_only_from_the_proof_onwards_and_uses_the_absolute_baseline():
    proven = START + timedelta(days=20)
    report = attributed_uplift([_result(proven_at=proven, lower=0.1, baseline=-100.0, visitors=10.0)], START, END)
    assert report.items[0].uplift_minor == 1000  # 0.1 × |−100| × 10 × 10 days
    later = attributed_uplift([_result(proven_at=END + timedelta(days=1))], START, END)
    assert later.items[0].reason == OUTSIDE_PERIOD and later.total("EUR") == 0


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"state": "MEASURING"}, NOT_PROVEN),
        ({"state": "ROLLED_BACK"}, NOT_PROVEN),
        ({"proven_at": None}, NOT_PROVEN),
        ({"lower": None}, NO_LOWER_BOUND),
        ({"lower": -0.02}, LOWER_BOUND_NOT_POSITIVE),
        ({"lower": 0.0}, LOWER_BOUND_NOT_POSITIVE),
    ],
)
def test_unproven_or_unsure_changesets_count_zero(kwargs, reason):
    report = attributed_uplift([_result(**kwargs)], START, END)
    assert report.items[0].reason == reason
    assert report.items[0].uplift_minor == 0 and report.total("EUR") == 0


def test_permanent_counts_like_proven():
    proven = attributed_uplift([_result(state="PROVEN")], START, END).total("EUR")
    assert attributed_uplift([_result(state="PERMANENT")], START, END).total("EUR") == proven > 0


def test_totals_are_per_currency_and_currencies_never_mix():
    results = [_result("a"), _result("b", currency="USD", baseline=100.0), _result("c")]
    report = attributed_uplift(results, START, END)
    assert set(report.totals) == {"EUR", "USD"}
    assert report.total("EUR") == 2 * report.items[0].uplift_minor
    assert report.total("USD") == report.items[1].uplift_minor
    assert report.total("GBP") == 0
    with pytest.raises(ValueError, match="never mix"):
        attributed_uplift(results, START, END, currency="EUR")
    with pytest.raises(ValueError, match="never mix"):
        cumulative_improvement(results, [date(2025, 3, 1)])
    with pytest.raises(ValueError, match="never mix"):
        holdout_cross_check(10.0, 11.0, 1000, attributed=report, currency="EUR")
    assert json.loads(json.dumps(report.as_numbers()))["totals"][0]["currency"] == "EUR"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"proven_at": datetime(2025, 3, 1)}, "proven_at"),
        ({"currency": "eur"}, "currency"),
        ({"visitors": -1.0}, "treated_visitors_per_day"),
        ({"lower": float("nan")}, "lift_lower_bound"),
        ({"baseline": float("inf")}, "baseline_gpv_minor"),
    ],
)
def test_bad_results_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _result(**kwargs)


def test_bad_periods_and_duplicates_are_rejected():
    with pytest.raises(ValueError, match="period_start"):
        attributed_uplift([], datetime(2025, 3, 1), END)
    with pytest.raises(ValueError, match="before"):
        attributed_uplift([], END, START)
    with pytest.raises(ValueError, match="twice"):
        attributed_uplift([_result("a"), _result("a")], START, END)


def test_cumulative_improvement_is_a_non_decreasing_daily_series():
    results = [
        _result("a", proven_at=START + timedelta(days=2, hours=12), lower=0.02, baseline=300.0, visitors=500.0),
        _result("b", proven_at=START + timedelta(days=5), lower=0.01, baseline=300.0, visitors=800.0),
        _result("c", state="MEASURING"),
    ]
    days = [date(2025, 3, 1) + timedelta(days=i) for i in range(10)]
    series = cumulative_improvement(results, days)
    assert [point.day for point in series] == days
    totals = [point.cumulative_minor for point in series]
    assert totals[:2] == [0, 0] and totals[2] == 1500  # half a day of a: 0.02 × 300 × 500 × 0.5
    assert all(later >= earlier for earlier, later in zip(totals, totals[1:]))
    assert sum(point.daily_minor for point in series) == totals[-1]
    whole = attributed_uplift(results, START, datetime(2025, 3, 11, tzinfo=UTC)).total("EUR")
    assert totals[-1] == whole
    assert {point.currency for point in series} == {"EUR"}


def test_cumulative_improvement_days_in_a_store_timezone_and_consecutive():
    cet = timezone(timedelta(hours=1))
    result = _result(proven_at=datetime(2025, 3, 1, 23, 30, tzinfo=UTC), lower=0.1, baseline=100.0, visitors=24.0)
    (point,) = cumulative_improvement([result], [date(2025, 3, 2)], tz=cet)
    assert point.cumulative_minor == 235  # 2 March CET after 00:30 CET: 0.1 × 100 × 24 × 23.5/24
    with pytest.raises(ValueError, match="consecutive"):
        cumulative_improvement([result], [date(2025, 3, 1), date(2025, 3, 3)])
    assert cumulative_improvement([], [date(2025, 3, 1)])[0].cumulative_minor == 0
    assert cumulative_improvement([result], []) == ()


def test_holdout_cross_check():
    report = attributed_uplift([_result(lower=0.02, baseline=250.0, visitors=1000.0)], START, END)
    assert report.total("EUR") == 150_000
    # GPV 250 in the holdout, 260 outside it, over 30 000 visitors: 300 000 implied ≥ 150 000 attributed
    fine = holdout_cross_check(250.0, 260.0, 30_000, attributed=report, currency="EUR")
    assert fine.implied_minor == 300_000 and fine.attributed_minor == 150_000
    assert not fine.exceeds and fine.flags == ()
    # a holdout showing only +2 per visitor: 60 000 implied < 150 000 attributed
    high = holdout_cross_check(250.0, 252.0, 30_000, attributed=report, currency="EUR", difference_se=1.0)
    assert high.exceeds and EXCEEDS_HOLDOUT in high.flags
    assert high.implied_upper_minor == math.floor((2 + Fraction(1.96)) * 30_000) in (118_799, 118_800)
    assert EXCEEDS_HOLDOUT_UPPER in high.flags
    wide = holdout_cross_check(250.0, 252.0, 30_000, attributed=150_000, currency="EUR", difference_se=3.0)
    assert wide.flags == (EXCEEDS_HOLDOUT,)  # above the point estimate, not above the upper bound
    assert json.loads(json.dumps(wide.as_numbers()))["flags"] == [EXCEEDS_HOLDOUT]
    with pytest.raises(ValueError, match="visitors"):
        holdout_cross_check(1.0, 2.0, -5, attributed=0, currency="EUR")
    with pytest.raises(ValueError, match="attributed"):
        holdout_cross_check(1.0, 2.0, 5, attributed=1.5, currency="EUR")


def test_state_names_match_the_domain():
    from domain import changeset

    from autopilot import attribution

    assert attribution.ATTRIBUTABLE_STATES == {changeset.PROVEN, changeset.PERMANENT}


_lifts = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False)


@st.composite
def _results(draw):
    count = draw(st.integers(0, 8))
    results = []
    for i in range(count):
        point = draw(_lifts)
        lower = draw(st.one_of(st.none(), st.floats(min_value=-1.0, max_value=point, allow_nan=False)))
        proven_at = draw(st.one_of(st.none(), st.datetimes(
            min_value=datetime(2025, 1, 1), max_value=datetime(2025, 6, 1), timezones=st.just(UTC))))
        results.append(ChangeSetResult(
            changeset_id=f"cs-{i}",
            state=draw(st.sampled_from(["PROVEN", "PERMANENT", "MEASURING", "ROLLED_BACK"])),
            proven_at=proven_at,
            lift_lower_bound=lower,
            baseline_gpv_minor=draw(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)),
            treated_visitors_per_day=draw(st.floats(min_value=0, max_value=1e6, allow_nan=False)),
            currency="EUR",
            lift_point_estimate=point,
        ))
    return results


@settings(max_examples=200, deadline=None)
@given(results=_results(), start_day=st.integers(0, 150), length=st.integers(0, 90))
def test_attribution_is_conservative_integer_and_never_negative(results, start_day, length):
    start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=start_day)
    report = attributed_uplift(results, start, start + timedelta(days=length))
    total = report.total("EUR")
    assert isinstance(total, int) and total >= 0
    assert total == sum(item.uplift_minor for item in report.items)
    counted_points = 0
    for item in report.items:
        assert isinstance(item.uplift_minor, int) and item.uplift_minor >= 0
        if item.reason == COUNTED:
            assert item.uplift_minor <= item.point_estimate_minor
            counted_points += item.point_estimate_minor
        else:
            assert item.uplift_minor == 0
    assert total <= counted_points  # attributed ≤ the point-estimate uplifts of the same ChangeSets
    longer = attributed_uplift(results, start, start + timedelta(days=length + 1)).total("EUR")
    assert longer >= total  # a longer period never attributes less
