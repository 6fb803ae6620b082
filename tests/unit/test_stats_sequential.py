"""The one-sided asymptotic confidence sequence: formula, tuning, and anytime validity under peeking."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from autopilot.stats.sequential import (
    boundary_multiplier,
    fieller_lift_bounds,
    lift_confidence_sequence,
    mean_radius,
    optimal_rho,
)

ALPHA = 0.05


def test_radius_is_the_documented_formula():
    n, sigma, rho = 500, 3.0, 0.05
    u = n * rho**2
    expected = sigma * np.sqrt(2 * (u + 1) / (n * u) * np.log(1 + np.sqrt(u + 1) / (2 * ALPHA)))
    assert mean_radius(n, sigma, rho, ALPHA) == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(st.floats(1.0, 1e7), st.floats(1e-4, 10.0), st.sampled_from([0.001, 0.01, 0.05, 0.2]))
def test_boundary_is_conservative_for_the_half_normal_mixture(n, rho, alpha):
    # Ville: P(∃n: M_n ≥ 1/α) ≤ α for the martingale M(S, v) = 2√(ρ'/(v+ρ'))·exp(S²/2(v+ρ'))·Φ(S/√(v+ρ')),
    # ρ' = 1/ρ², v = n (σ = 1). Crossing our boundary S = n·r_n must imply M ≥ 1/α.
    rho_prime = 1 / rho**2
    s = n * mean_radius(n, 1.0, rho, alpha)
    v = n + rho_prime
    log_m = np.log(2) + 0.5 * np.log(rho_prime / v) + s**2 / (2 * v) + stats.norm.logcdf(s / np.sqrt(v))
    assert log_m >= np.log(1 / alpha) - 1e-9


def test_rho_minimises_the_width_at_n_star():
    n_star = 20_000
    rho = optimal_rho(n_star, ALPHA)
    at_optimum = boundary_multiplier(n_star, rho, ALPHA)
    for factor in (0.5, 0.8, 1.25, 2.0):
        assert boundary_multiplier(n_star, rho * factor, ALPHA) > at_optimum
    # the width depends on ρ only through N*·ρ²
    assert optimal_rho(4 * n_star, ALPHA) == pytest.approx(rho / 2, rel=1e-4)
    # always wider than the fixed-horizon one-sided z: the price of peeking
    assert at_optimum > stats.norm.isf(ALPHA)


def test_lift_bounds_contain_the_estimate_and_invert_the_contrast_test():
    mean_t, var_t, mean_c, var_c = 10.6, 0.04, 10.0, 0.05
    bounds = lift_confidence_sequence(mean_t, var_t, mean_c, var_c, n=8000, n_star=10_000)
    assert bounds.estimate == pytest.approx(0.06)
    assert bounds.lower < 0.06 < bounds.upper
    assert bounds.multiplier == pytest.approx(boundary_multiplier(8000, bounds.rho, ALPHA))
    # at each bound the linear contrast m_T − R·m_C sits exactly on the boundary
    for lift in (bounds.lower, bounds.upper):
        ratio = 1 + lift
        contrast = abs(mean_t - ratio * mean_c) / np.sqrt(var_t + ratio**2 * var_c)
        assert contrast == pytest.approx(bounds.multiplier)
    # close to the delta-method bounds when the control mean is precise
    se = np.sqrt(var_t / mean_c**2 + mean_t**2 * var_c / mean_c**4)
    assert bounds.upper - bounds.lower == pytest.approx(2 * bounds.multiplier * se, rel=0.02)


def test_negative_control_mean_and_unbounded_case():
    # a loss shrinking from −10 to −8 is a +20 % lift on (m_T − m_C)/|m_C|
    lower, upper = fieller_lift_bounds(-8.0, 0.01, -10.0, 0.01, 2.0)
    assert lower < 0.2 < upper
    mirrored = fieller_lift_bounds(8.0, 0.01, 10.0, 0.01, 2.0)
    # same ratio set R ∈ [r₁, r₂]; Δ = 1 − R instead of R − 1 when the control mean is negative
    assert (float(lower), float(upper)) == pytest.approx((-float(mirrored[1]), -float(mirrored[0])))
    # control mean not distinguishable from 0: no finite bound is honest
    lower, upper = fieller_lift_bounds(1.0, 0.1, 0.5, 1.0, 2.0)
    assert (lower, upper) == (-np.inf, np.inf)


@pytest.mark.parametrize(
    "call",
    [
        lambda: optimal_rho(0, ALPHA),
        lambda: optimal_rho(100, 0.0),
        lambda: optimal_rho(100, 0.6),
        lambda: boundary_multiplier(0, 0.1, ALPHA),
        lambda: boundary_multiplier(10, 0.0, ALPHA),
        lambda: lift_confidence_sequence(1.0, 0.1, 0.0, 0.1, 10, 10),
        lambda: lift_confidence_sequence(1.0, -0.1, 1.0, 0.1, 10, 10),
    ],
)
def test_invalid_arguments(call):
    with pytest.raises(ValueError):
        call()


def test_peeking_every_step_aa_false_alarms():
    """200 A/A runs of skewed revenue, looked at after every visitor pair from 100 to 2000 per arm.

    The confidence sequence's one-sided false-kill rate stays ≤ α (+ a margin for 200 runs), while
    the fixed-horizon one-sided z-test checked at every step alarms several times as often.
    """
    rng = np.random.default_rng(2026)
    runs, horizon, start = 200, 2000, 100
    # zero-inflated lognormal revenue per visitor (most visitors buy nothing)
    def revenue(shape):
        return (rng.random(shape) < 0.3) * rng.lognormal(3.0, 1.0, shape)

    t, c = revenue((runs, horizon)), revenue((runs, horizon))
    n = np.arange(1, horizon + 1, dtype=float)

    def running(values):
        mean = np.cumsum(values, 1) / n
        var = (np.cumsum(values**2, 1) - n * mean**2) / np.maximum(n - 1, 1)
        return mean[:, start - 1 :], var[:, start - 1 :] / n[start - 1 :]

    mt, vt = running(t)
    mc, vc = running(c)
    total_units = 2 * n[start - 1 :]

    multiplier = boundary_multiplier(total_units, optimal_rho(2 * horizon, ALPHA), ALPHA)
    cs_lower, cs_upper = fieller_lift_bounds(mt, vt, mc, vc, multiplier)
    cs_false_kill = np.mean(np.any(cs_upper < 0, axis=1))  # K1: upper bound below 0
    cs_false_prove = np.mean(np.any(cs_lower > 0, axis=1))
    _, z_upper = fieller_lift_bounds(mt, vt, mc, vc, stats.norm.isf(ALPHA))  # fixed-horizon one-sided
    z_false_kill = np.mean(np.any(z_upper < 0, axis=1))

    margin = 0.03  # ≈ 3 binomial SEs at α = 0.05 over 200 runs
    assert cs_false_kill <= ALPHA + margin
    assert cs_false_prove <= ALPHA + margin
    assert z_false_kill > 2.5 * ALPHA
    assert z_false_kill > cs_false_kill + 0.1
