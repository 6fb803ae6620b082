"""The diagnosis' statistics: Beta posteriors, P(a < b) deep into the tails, dispersion, Bonferroni."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.special import betaln

from autopilot.diagnosis import stats


def exact_prob_less(a: stats.BetaPosterior, b: stats.BetaPosterior) -> float:
    """P(p_a < p_b) in closed form for an integer b.alpha (Evan Miller's sum), as the yardstick."""
    return float(sum(np.exp(betaln(a.alpha + i, a.beta + b.beta) - np.log(b.beta + i) - betaln(1 + i, b.beta)
                            - betaln(a.alpha, a.beta)) for i in range(int(b.alpha))))


CASES = [
    ((20, 30), (40, 30)),
    ((200, 50), (10, 3)),
    ((5, 100), (30, 2000)),
    ((17, 18), (160, 40)),  # P ≈ 1 − 9.3e-5: the regime of a Bonferroni threshold
    ((9, 25), (300, 60)),  # P ≈ 1 − 1e-9
    ((1, 1), (1, 1)),
    ((30, 3), (3000, 300)),  # a wide posterior against a narrow one
    ((3000, 300), (30, 3)),
]


@pytest.mark.parametrize("a,b", CASES)
def test_prob_less_matches_the_closed_form_far_into_the_tails(a, b):
    a, b = stats.BetaPosterior(*a), stats.BetaPosterior(*b)
    exact = exact_prob_less(a, b)
    found = stats.prob_less(a, b)
    assert found == pytest.approx(exact, abs=1e-9)
    assert 1 - found == pytest.approx(1 - exact, rel=1e-4, abs=1e-12)  # the complement too: thresholds live there


def test_prob_less_agrees_with_monte_carlo():
    a, b = stats.posterior(41, 80), stats.posterior(130, 200)
    rng = np.random.default_rng(7)
    monte_carlo = np.mean(a.draws(400_000, rng) < b.draws(400_000, rng))
    assert stats.prob_less(a, b) == pytest.approx(monte_carlo, abs=0.003)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 400), st.integers(0, 400), st.integers(0, 400), st.integers(0, 400))
def test_prob_less_and_its_mirror_sum_to_one(x_a, f_a, x_b, f_b):
    a, b = stats.posterior(x_a, x_a + f_a), stats.posterior(x_b, x_b + f_b)
    forward, backward = stats.prob_less(a, b), stats.prob_less(b, a)
    assert 0.0 <= forward <= 1.0
    assert forward + backward == pytest.approx(1.0, abs=1e-5)  # Simpson on 401 nodes; tails are relative-exact


def test_screening_computes_exactly_where_a_threshold_could_be_met():
    a = [stats.posterior(x, 100) for x in (60, 70, 79, 80, 95)]
    b = stats.posterior(800, 1000)
    screened = stats.prob_less_screened([p.alpha for p in a], [p.beta for p in a],
                                        [b.alpha] * len(a), [b.beta] * len(a), screen=0.9)
    exact = [stats.prob_less(p, b) for p in a]
    for got, want in zip(screened, exact):
        if want >= 0.95:
            assert got == pytest.approx(want, abs=1e-9)
        else:
            assert got < 0.95
    assert stats.prob_less_many([], [], [], []).size == 0


def test_posterior_and_its_interval():
    post = stats.posterior(30, 100)
    assert (post.alpha, post.beta) == (31, 71)
    assert post.mean == pytest.approx(31 / 102)
    low, high = post.interval(0.95)
    assert low < 0.30 < high and high - low < 0.2
    assert post.prob_below(high) == pytest.approx(0.975, abs=1e-9)
    deflated = stats.posterior(30, 100, weight=0.5)
    assert (deflated.alpha, deflated.beta) == (16, 36)


@pytest.mark.parametrize("args", [(5, 3), (-1, 3), (1, 3, 0.0), (1, 3, 1.5)])
def test_posterior_refuses_impossible_counts(args):
    with pytest.raises(ValueError):
        stats.posterior(*args)


def test_relative_drop_is_reproducible_and_brackets_the_truth():
    recent, baseline = stats.posterior(40, 100), stats.posterior(800, 1000)
    drop, gap = stats.relative_drop(recent, baseline, seed=3)
    again, _ = stats.relative_drop(recent, baseline, seed=3)
    assert drop == again
    assert drop.low < 0.5 < drop.high  # 1 − 0.4 / 0.8
    assert gap.low < 0.4 < gap.high
    fixed, fixed_gap = stats.gap_to_value(recent, 0.8, seed=3)
    assert fixed.low < 0.5 < fixed.high and fixed.high - fixed.low < drop.high - drop.low  # a fixed value is certain


def test_bonferroni():
    assert stats.bonferroni(0.99, 1) == pytest.approx(0.99)
    assert stats.bonferroni(0.99, 500) == pytest.approx(1 - 0.01 / 500)
    assert stats.bonferroni(0.95, 0) == pytest.approx(0.95)
    with pytest.raises(ValueError):
        stats.bonferroni(1.0, 3)


def test_excess_dispersion_sees_day_to_day_variation_and_nothing_else():
    rng = np.random.default_rng(11)
    trials = np.full(400, 2000)
    binomial = rng.binomial(trials, 0.3)
    assert stats.excess_dispersion(binomial, trials) < 0.002
    wobbly_rates = 0.3 * rng.lognormal(0.0, 0.1, size=400)  # CV ≈ 0.1 → CV² ≈ 0.01
    wobbly = rng.binomial(trials, wobbly_rates)
    assert stats.excess_dispersion(wobbly, trials) == pytest.approx(0.01, rel=0.3)
    assert stats.excess_dispersion([1, 2], [10, 10]) == 0.0  # too few days to say


def test_effective_weight_deflates_large_windows_more():
    assert stats.effective_weight(0.5, 1000, 7, 0.0) == 1.0
    small, large = stats.effective_weight(0.5, 100, 7, 0.01), stats.effective_weight(0.5, 10_000, 7, 0.01)
    assert 0 < large < small < 1
    # A window's rate variance p(1-p)/N + cv2 p^2 / D equals the binomial variance of N·w visitors.
    p, n, days, cv2 = 0.5, 10_000, 7, 0.01
    assert p * (1 - p) / (n * large) == pytest.approx(p * (1 - p) / n + cv2 * p**2 / days)
