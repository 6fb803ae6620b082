"""Beta-Binomial and Gaussian-lift summaries against quadrature, closed forms and seeded Monte Carlo."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from autopilot.stats.bayes import (
    BetaPosterior,
    LiftEstimate,
    delta_method_lift,
    difference_interval,
    expected_loss,
    expected_relative_loss,
    gaussian_expected_loss,
    lift_interval,
    lift_posterior,
    prob_greater,
    prob_greater_numeric,
    relative_lift,
)
from autopilot.stats.sufficient import ArmStats

DRAWS = 400_000  # Monte Carlo SE of a probability ≤ 0.0008; tolerances below are ≥ 5 SE


def _draws(posterior, rng):
    return rng.beta(posterior.alpha, posterior.beta, DRAWS)


def test_posterior_is_uniform_prior_plus_counts():
    post = BetaPosterior.from_counts(30, 200)
    assert (post.alpha, post.beta) == (31, 171)
    assert post.mean == pytest.approx(31 / 202)
    assert post.sd == pytest.approx(stats.beta(31, 171).std())
    assert post.cdf(0.15) == pytest.approx(stats.beta(31, 171).cdf(0.15))


@pytest.mark.parametrize(("conversions", "n"), [(-1, 10), (11, 10)])
def test_counts_validated(conversions, n):
    with pytest.raises(ValueError):
        BetaPosterior.from_counts(conversions, n)


def test_zero_units_is_a_clear_error():
    with pytest.raises(ValueError, match="n > 0"):
        BetaPosterior.from_counts(0, 0)


def _scipy_prob_greater(t, c):
    # independent: integrate f_T(p)·F_C(p) over the T density directly
    value, _ = integrate.quad(
        lambda p: stats.beta.pdf(p, t.alpha, t.beta) * stats.beta.cdf(p, c.alpha, c.beta),
        0, 1, points=[t.mean], limit=400, epsabs=1e-12,
    )
    return value


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 400).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
    st.integers(1, 400).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
)
def test_prob_greater_closed_form_matches_quadrature(treatment_counts, control_counts):
    t = BetaPosterior.from_counts(treatment_counts[1], treatment_counts[0])
    c = BetaPosterior.from_counts(control_counts[1], control_counts[0])
    exact = prob_greater(t, c)
    assert exact == pytest.approx(_scipy_prob_greater(t, c), abs=1e-7)
    assert exact == pytest.approx(prob_greater_numeric(t, c), abs=1e-7)
    assert exact + prob_greater(c, t) == pytest.approx(1.0, abs=1e-9)


def test_prob_greater_large_counts_and_zero_conversions():
    t, c = BetaPosterior.from_counts(5200, 50_000), BetaPosterior.from_counts(5000, 50_000)
    assert prob_greater(t, c) == pytest.approx(prob_greater_numeric(t, c), abs=1e-7)
    zero = BetaPosterior.from_counts(0, 1000)
    assert prob_greater(zero, zero) == pytest.approx(0.5, abs=1e-9)
    assert prob_greater(zero, BetaPosterior.from_counts(20, 1000)) < 1e-5


def test_prob_greater_rejects_non_integer_alpha_but_numeric_handles_it():
    t, c = BetaPosterior(2.5, 10.0), BetaPosterior(2.0, 10.0)
    with pytest.raises(ValueError):
        prob_greater(t, c)
    assert prob_greater_numeric(t, c) == pytest.approx(_scipy_prob_greater(t, c), abs=1e-7)


@pytest.mark.parametrize(("t_counts", "c_counts"), [((120, 1000), (100, 1000)), ((3, 40), (0, 35))])
def test_intervals_and_losses_match_monte_carlo(t_counts, c_counts):
    rng = np.random.default_rng(20240601)
    t, c = BetaPosterior.from_counts(*t_counts), BetaPosterior.from_counts(*c_counts)
    pt, pc = _draws(t, rng), _draws(c, rng)
    diff, lift = pt - pc, pt / pc - 1

    d_int = difference_interval(t, c)
    assert np.mean(diff < d_int.lower) == pytest.approx(0.025, abs=0.004)
    assert np.mean(diff > d_int.upper) == pytest.approx(0.025, abs=0.004)
    l_int = lift_interval(t, c, level=0.9)
    assert np.mean(lift < l_int.lower) == pytest.approx(0.05, abs=0.005)
    assert np.mean(lift > l_int.upper) == pytest.approx(0.05, abs=0.005)

    loss = np.maximum(pc - pt, 0)
    assert expected_loss(t, c) == pytest.approx(loss.mean(), abs=6 * loss.std() / np.sqrt(DRAWS) + 1e-9)
    rel_loss = np.maximum(-lift, 0)
    assert expected_relative_loss(t, c) == pytest.approx(
        rel_loss.mean(), abs=6 * rel_loss.std() / np.sqrt(DRAWS) + 1e-9
    )


def test_difference_interval_level_validated():
    post = BetaPosterior.from_counts(5, 50)
    with pytest.raises(ValueError):
        difference_interval(post, post, level=1.0)


# --- Gaussian lift --------------------------------------------------------------------------------


def test_delta_method_standard_error_matches_simulation():
    rng = np.random.default_rng(3)
    n, mean_t, mean_c, sd = 500, 11.0, 10.0, 8.0
    t = rng.normal(mean_t, sd, n)
    c = rng.normal(mean_c, sd, n)
    estimate = relative_lift(ArmStats.from_values(t), ArmStats.from_values(c))
    assert estimate.lift == pytest.approx(t.mean() / c.mean() - 1)
    sim_t = rng.normal(mean_t, sd, (4000, n)).mean(1)
    sims = sim_t / rng.normal(mean_c, sd, (4000, n)).mean(1) - 1
    assert estimate.standard_error == pytest.approx(sims.std(), rel=0.1)


def test_lift_uses_absolute_control_mean():
    lift, _ = delta_method_lift(-8.0, 0.1, -10.0, 0.1)
    assert lift == pytest.approx(0.2)  # a smaller loss is an improvement
    with pytest.raises(ValueError, match="control mean"):
        delta_method_lift(1.0, 0.1, 0.0, 0.1)


@settings(max_examples=50, deadline=None)
@given(st.floats(-0.5, 0.5), st.floats(0.001, 0.5))
def test_gaussian_expected_loss_matches_quadrature(mu, sigma):
    # E[max(−Δ, 0)] = ∫_{−∞}^0 (−d)·φ((d − μ)/σ)/σ dd; beyond 12σ the density is nil
    low = mu - 12 * sigma
    value = 0.0
    if low < 0:
        value = integrate.quad(lambda d: -d * stats.norm.pdf(d, mu, sigma), low, 0, epsabs=1e-13)[0]
    assert gaussian_expected_loss(mu, sigma) == pytest.approx(value, abs=1e-9)


def test_flat_posterior_and_skeptical_prior():
    estimate = LiftEstimate(0.1, 0.05)
    flat = lift_posterior(estimate)
    assert (flat.mean, flat.sd) == (0.1, 0.05)
    assert flat.prob_positive() == pytest.approx(stats.norm.cdf(2.0))
    interval = flat.interval(0.95)
    half_width = 1.959964 * 0.05
    assert (interval.lower, interval.upper) == pytest.approx((0.1 - half_width, 0.1 + half_width), abs=1e-6)

    shrunk = lift_posterior(estimate, prior_sd=0.3)
    # conjugate normal: precision-weighted mean, precisions add
    precision = 1 / 0.05**2 + 1 / 0.3**2
    assert shrunk.sd == pytest.approx(precision**-0.5)
    assert shrunk.mean == pytest.approx(0.1 / 0.05**2 / precision)
    assert 0 < shrunk.mean < 0.1
    assert shrunk.expected_loss() == pytest.approx(gaussian_expected_loss(shrunk.mean, shrunk.sd))


def test_lift_posterior_validates():
    with pytest.raises(ValueError):
        lift_posterior(LiftEstimate(0.1, 0.0))
    with pytest.raises(ValueError):
        lift_posterior(LiftEstimate(0.1, 0.1), prior_sd=0.0)
    with pytest.raises(ValueError):
        gaussian_expected_loss(0.0, 0.0)
