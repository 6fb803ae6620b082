"""ArmStats against numpy on the raw values; winsorisation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from autopilot.stats.sufficient import ArmStats, winsorisation_cap, winsorise

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40).flatmap(lambda n: st.tuples(*(arrays(float, n, elements=finite),) * 3)))
def test_moments_match_numpy(columns):
    y, x, d = columns
    arm = ArmStats.from_values(y, x, d)
    scale = 1e-9 * y.size * (1 + np.abs(np.concatenate([y, x, d])).max() ** 2)
    assert arm.n == y.size
    assert arm.mean_y == pytest.approx(y.mean(), abs=1e-9 * (1 + np.abs(y).max()))
    assert arm.mean_x == pytest.approx(x.mean(), abs=1e-9 * (1 + np.abs(x).max()))
    assert arm.var_y == pytest.approx(np.var(y, ddof=1), abs=scale)
    assert arm.var_x == pytest.approx(np.var(x, ddof=1), abs=scale)
    assert arm.cov_xy == pytest.approx(np.cov(x, y, ddof=1)[0, 1], abs=scale)
    assert arm.cov_yd == pytest.approx(np.cov(y, d, ddof=1)[0, 1], abs=scale)
    assert arm.var_mean_y == pytest.approx(np.var(y, ddof=1) / y.size, abs=scale)


def test_sums_add_like_concatenation():
    rng = np.random.default_rng(1)
    y1, x1, y2, x2 = rng.normal(size=(4, 50))
    combined = ArmStats.from_values(y1, x1) + ArmStats.from_values(y2, x2)
    direct = ArmStats.from_values(np.concatenate([y1, y2]), np.concatenate([x1, x2]))
    for field in ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy"):
        assert getattr(combined, field) == pytest.approx(getattr(direct, field))


def test_ratio_variance_matches_bootstrap():
    # margin rate = Σ profit / Σ revenue with visitor-level correlation between the two
    rng = np.random.default_rng(7)
    n = 2000

    def draw(size):
        revenue = rng.exponential(50.0, size) * (rng.random(size) < 0.3)
        profit = 0.25 * revenue + rng.normal(0, 5, size) * (revenue > 0)
        return profit, revenue

    profit, revenue = draw(n)
    arm = ArmStats.from_values(profit, d=revenue)
    assert arm.ratio == pytest.approx(profit.sum() / revenue.sum())
    # repeated independent samples: the spread of the ratio estimate
    ratios = []
    for _ in range(600):
        p, r = draw(n)
        ratios.append(p.sum() / r.sum())
    assert arm.var_ratio == pytest.approx(np.var(ratios), rel=0.2)


def test_empty_arm_has_no_mean():
    empty = ArmStats.from_values(np.array([]))
    with pytest.raises(ValueError, match="at least 1"):
        _ = empty.mean_y
    with pytest.raises(ValueError, match="at least 2"):
        _ = ArmStats.from_values(np.array([1.0])).var_y


def test_zero_denominator_ratio_is_an_error():
    with pytest.raises(ValueError, match="denominator"):
        _ = ArmStats.from_values(np.ones(3), d=np.zeros(3)).ratio


def test_mismatched_lengths_rejected():
    with pytest.raises(ValueError):
        ArmStats.from_values(np.ones(3), np.ones(2))


def test_winsorise_caps_only_the_upper_tail():
    values = np.arange(1, 10001, dtype=float)
    capped = winsorise(values)
    cap = np.percentile(values, 99.9)
    assert capped.max() == pytest.approx(cap)
    assert np.array_equal(capped[values <= cap], values[values <= cap])
    assert (capped == cap).sum() == (values >= cap).sum()
    assert values.max() == 10000  # input untouched


def test_winsorise_with_shared_cap_and_validation():
    assert np.array_equal(winsorise(np.array([1.0, 5.0, 9.0]), cap=4.0), [1.0, 4.0, 4.0])
    assert winsorise(np.array([])).size == 0
    with pytest.raises(ValueError):
        winsorisation_cap(np.array([]))
    with pytest.raises(ValueError):
        winsorisation_cap(np.ones(3), percentile=101)
