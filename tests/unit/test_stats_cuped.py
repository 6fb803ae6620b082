"""CUPED from sufficient statistics against the adjustment applied to raw values."""

import numpy as np
import pytest

from autopilot.stats.bayes import relative_lift
from autopilot.stats.cuped import cuped_adjust, cuped_lift, cuped_theta, pooled_covariate_mean
from autopilot.stats.sufficient import ArmStats


def _arms(rng, n=3000, effect=0.05):
    def arm(multiplier):
        x = rng.gamma(2.0, 10.0, n)  # pre-period spend
        y = multiplier * (0.8 * x + rng.normal(0, 6, n))
        return x, y

    return arm(1 + effect), arm(1.0)


def test_theta_and_adjusted_moments_match_raw_values():
    rng = np.random.default_rng(11)
    (xt, yt), (xc, yc) = _arms(rng)
    t, c = ArmStats.from_values(yt, xt), ArmStats.from_values(yc, xc)
    theta = cuped_theta(t, c)
    # independent: pooled within-arm regression slope via np.cov
    co = (len(xt) - 1) * np.cov(xt, yt)[0, 1] + (len(xc) - 1) * np.cov(xc, yc)[0, 1]
    vx = (len(xt) - 1) * np.var(xt, ddof=1) + (len(xc) - 1) * np.var(xc, ddof=1)
    assert theta == pytest.approx(co / vx, rel=1e-9)

    mu_x = np.concatenate([xt, xc]).mean()
    assert pooled_covariate_mean(t, c) == pytest.approx(mu_x)
    adjusted_values = yt - theta * (xt - mu_x)
    adjusted = cuped_adjust(t, theta, mu_x)
    assert adjusted.mean == pytest.approx(adjusted_values.mean(), rel=1e-9)
    assert adjusted.variance == pytest.approx(np.var(adjusted_values, ddof=1), rel=1e-6)
    assert adjusted.var_mean == pytest.approx(np.var(adjusted_values, ddof=1) / len(yt), rel=1e-6)


def test_cuped_shrinks_the_standard_error_without_bias():
    rng = np.random.default_rng(5)
    raw, adjusted = [], []
    for _ in range(300):
        (xt, yt), (xc, yc) = _arms(rng, n=400)
        t, c = ArmStats.from_values(yt, xt), ArmStats.from_values(yc, xc)
        raw.append(relative_lift(t, c))
        adjusted.append(cuped_lift(t, c))
    raw_lifts = np.array([e.lift for e in raw])
    cuped_lifts = np.array([e.lift for e in adjusted])
    # same target (true lift 5 %), far less spread; the reported SE tracks the actual spread
    assert cuped_lifts.mean() == pytest.approx(0.05, abs=0.005)
    assert cuped_lifts.std() < 0.6 * raw_lifts.std()
    assert np.mean([e.standard_error for e in adjusted]) == pytest.approx(cuped_lifts.std(), rel=0.15)


def test_no_covariate_information_means_no_adjustment():
    rng = np.random.default_rng(2)
    y = rng.normal(10, 2, 100)
    new_visitors = ArmStats.from_values(y)  # x ≡ 0
    assert cuped_theta(new_visitors, new_visitors) == 0.0
    lift = cuped_lift(ArmStats.from_values(y * 1.1), new_visitors)
    raw = relative_lift(ArmStats.from_values(y * 1.1), new_visitors)
    assert (lift.lift, lift.standard_error) == pytest.approx((raw.lift, raw.standard_error))


def test_empty_arm_is_rejected():
    with pytest.raises(ValueError):
        cuped_theta(ArmStats.from_values(np.array([])), ArmStats.from_values(np.ones(5), np.ones(5)))
