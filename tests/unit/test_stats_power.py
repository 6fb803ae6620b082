"""Sample sizes against textbook values and the power they imply."""

import numpy as np
import pytest
from scipy import stats

from autopilot import decider
from autopilot.stats.bayes import BetaPosterior, prob_greater
from autopilot.stats.power import (
    DECIDER_EXPECTED_LOSS_THRESHOLD,
    DECIDER_K2_LIFT_LIMIT,
    DECIDER_MIN_EXPECTED_COUNT,
    DECIDER_MIN_UNITS_PER_ARM,
    DECIDER_PROB_THRESHOLD,
    HARD_GUARDRAILS,
    decider_power,
    decider_sample_size,
    minimum_sample_for_plan,
    sample_size_mean,
    sample_size_proportion,
    sequence_multiplier,
)
from autopilot.stats.sequential import boundary_multiplier, fieller_lift_bounds, optimal_rho
from autopilot.stats.sufficient import ArmStats


def test_textbook_proportion_p10_plus10pct():
    # p 0.10 → 0.11, α 0.05 one-sided, power 0.8: (1.6449·√(2·.105·.895) + 0.8416·√(.09 + .0979))² / .01²
    assert sample_size_proportion(0.10, 0.10, alpha=0.05, power=0.8) == 11_620


def test_two_sided_equivalent_matches_the_familiar_calculator_value():
    # α/2 = 0.025 gives the widely quoted two-sided 14 751 per arm for the same design
    assert sample_size_proportion(0.10, 0.10, alpha=0.025, power=0.8) == 14_751


def _power_proportion(p, lift, n, alpha):
    q = p * (1 + lift)
    pooled = (p + q) / 2
    z = stats.norm.isf(alpha)
    null_se = np.sqrt(2 * pooled * (1 - pooled) / n)
    alternative_se = np.sqrt((p * (1 - p) + q * (1 - q)) / n)
    return stats.norm.cdf((abs(q - p) - z * null_se) / alternative_se)


@pytest.mark.parametrize(("p", "lift"), [(0.02, 0.2), (0.1, 0.1), (0.3, -0.05), (0.5, 0.03)])
def test_sample_size_is_the_smallest_reaching_power(p, lift):
    n = sample_size_proportion(p, lift)
    assert _power_proportion(p, lift, n, 0.05) >= 0.8
    assert _power_proportion(p, lift, n - 1, 0.05) < 0.8


def test_simulated_power_of_the_z_test():
    rng = np.random.default_rng(42)
    n = sample_size_proportion(0.10, 0.10)
    xc = rng.binomial(n, 0.10, 20_000)
    xt = rng.binomial(n, 0.11, 20_000)
    pooled = (xc + xt) / (2 * n)
    z = (xt - xc) / n / np.sqrt(2 * pooled * (1 - pooled) / n)
    # MC SE ≈ 0.003; a 10 % error in n would move power by ≈ 0.03
    assert np.mean(z > stats.norm.isf(0.05)) == pytest.approx(0.8, abs=0.015)


def test_continuous_textbook_value():
    # mean 100, sd 50, +5 % → δ = 5: 2·(1.6449 + 0.8416)²·2500/25 = 1236.5
    assert sample_size_mean(100.0, 50.0, 0.05) == 1237
    assert sample_size_mean(-100.0, 50.0, -0.05) == 1237


@pytest.mark.parametrize(
    "call",
    [
        lambda: sample_size_proportion(0.0, 0.1),
        lambda: sample_size_proportion(0.1, 0.0),
        lambda: sample_size_proportion(0.9, 0.2),
        lambda: sample_size_proportion(0.1, 0.1, alpha=0.0),
        lambda: sample_size_mean(0.0, 1.0, 0.1),
        lambda: sample_size_mean(1.0, 0.0, 0.1),
        lambda: sample_size_mean(1.0, 1.0, 0.1, power=1.0),
    ],
)
def test_invalid_designs(call):
    with pytest.raises(ValueError):
        call()


# --- the decider's own rules ----------------------------------------------------------------------


def test_the_calculator_uses_the_deciders_thresholds():
    plan = decider.ProofPlan(method="bayesian", n_star=1.0)
    assert DECIDER_K2_LIFT_LIMIT == decider.K2_LIFT_LIMIT
    assert DECIDER_PROB_THRESHOLD == plan.prob_threshold
    assert DECIDER_EXPECTED_LOSS_THRESHOLD == plan.expected_loss_threshold
    assert DECIDER_MIN_UNITS_PER_ARM == decider.MIN_UNITS_PER_ARM
    assert DECIDER_MIN_EXPECTED_COUNT == decider.MIN_EXPECTED_COUNT
    arms = decider.MetricArms(ArmStats(1, 0.0, 0.0), ArmStats(1, 0.0, 0.0))
    assert len(decider.hard_guardrails(arms, arms, arms)) == HARD_GUARDRAILS


def test_the_multiplier_is_the_deciders_and_smallest_at_the_design():
    for alpha in (0.05, 0.05 / 3):
        at_design = [sequence_multiplier(n, n, alpha) for n in (1_000, 50_000, 2_000_000)]
        assert at_design == pytest.approx([at_design[0]] * 3, rel=1e-4)  # depends on α only
        rho = optimal_rho(50_000, alpha)
        assert at_design[1] == pytest.approx(float(boundary_multiplier(50_000, rho, alpha)))
        assert sequence_multiplier(25_000, 50_000, alpha) > at_design[1]
    assert sequence_multiplier(1e5, 1e5, 0.05) == pytest.approx(2.778, abs=1e-3)
    assert sequence_multiplier(1e5, 1e5, 0.05 / 3) == pytest.approx(3.184, abs=1e-3)


@pytest.mark.parametrize(
    ("p", "lift", "method"),
    [(0.03, -0.10, "bayesian"), (0.03, 0.10, "bayesian"), (0.03, 0.10, "frequentist"), (0.10, -0.05, "bayesian"),
     (0.02, 0.20, "bayesian"), (0.30, 0.05, "frequentist")],
)
def test_decider_sample_size_is_the_smallest_reaching_power(p, lift, method):
    n = decider_sample_size(p, lift, method=method)
    assert decider_power(p, lift, n, method=method) >= 0.8
    assert decider_power(p, lift, n - 1, method=method) < 0.8


def test_known_values_for_10_percent_on_3_percent():
    # kill: K1 on conversion at α/3, (3.184 + 0.842)² · (.027·.973 + .03·.97) / .003² ≈ 99 700 per arm
    assert decider_sample_size(0.03, -0.10) == pytest.approx(99_717, abs=5)
    # the Bayesian proof also needs the anytime-valid lower bound above 0, which binds: the frequentist size
    assert decider_sample_size(0.03, 0.10) == decider_sample_size(0.03, 0.10, method="frequentist")
    # the frequentist proof uses the sequence at α: (2.778 + 0.842)² · (.033·.967 + .03·.97) / .003²
    assert decider_sample_size(0.03, 0.10, method="frequentist") == pytest.approx(88_832, abs=5)


def test_looking_at_every_tick_costs_units_over_the_fixed_horizon_test():
    fixed = sample_size_proportion(0.03, -0.10)
    sequential = decider_sample_size(0.03, -0.10)
    assert 2.3 < sequential / fixed < 3.0  # ≈ ((3.18 + 0.84) / (1.64 + 0.84))² = 2.6
    # fewer guardrails in the Bonferroni split, fewer units
    assert decider_sample_size(0.03, -0.10, guardrails=1) < sequential


def test_a_sequence_tuned_later_than_the_look_needs_more_units():
    n = decider_sample_size(0.03, -0.10)
    assert decider_sample_size(0.03, -0.10, n_star=8.0 * n) > n
    assert decider_power(0.03, -0.10, n, n_star=8.0 * n) < 0.8


def test_a_sceptical_prior_and_a_tight_loss_threshold_need_more_units():
    n = decider_sample_size(0.03, 0.10)
    assert decider_sample_size(0.03, 0.10, prior_sd=0.3) >= n
    assert decider_sample_size(0.03, 0.10, prior_sd=0.01) > n
    assert decider_sample_size(0.03, 0.10, expected_loss_threshold=0.00001) > n


def test_minimum_data_floors_the_size():
    assert decider_sample_size(0.5, 0.9) >= DECIDER_MIN_UNITS_PER_ARM
    rare = decider_sample_size(0.0001, 5.0)
    assert rare * 0.0001 >= DECIDER_MIN_EXPECTED_COUNT


def test_single_look_kill_power_matches_the_fieller_bounds():
    # the exact bounds the decider computes, at one look at the calculator's sample: power ≈ 0.8
    rng = np.random.default_rng(7)
    for p, lift in ((0.03, -0.10), (0.05, -0.20)):
        n = decider_sample_size(p, lift)
        xt, xc = rng.binomial(n, p * (1 + lift), 20_000) / n, rng.binomial(n, p, 20_000) / n
        m = sequence_multiplier(2 * n, 2 * n, 0.05 / 3)
        _, upper = fieller_lift_bounds(xt, xt * (1 - xt) / n, xc, xc * (1 - xc) / n, m)
        assert np.mean(upper < 0) == pytest.approx(0.8, abs=0.015)  # MC SE 0.003


def test_single_look_frequentist_proof_power_matches_the_fieller_bounds():
    rng = np.random.default_rng(8)
    n = decider_sample_size(0.03, 0.10, method="frequentist")
    xt, xc = rng.binomial(n, 0.033, 20_000) / n, rng.binomial(n, 0.03, 20_000) / n
    m = sequence_multiplier(2 * n, 2 * n, 0.05)
    lower, _ = fieller_lift_bounds(xt, xt * (1 - xt) / n, xc, xc * (1 - xc) / n, m)
    assert np.mean(lower > 0) == pytest.approx(0.8, abs=0.015)


def test_single_look_bayesian_proof_power_matches_the_beta_posteriors():
    rng = np.random.default_rng(9)
    n = decider_sample_size(0.03, 0.10)
    xt, xc = rng.binomial(n, 0.033, 1000), rng.binomial(n, 0.03, 1000)
    m = sequence_multiplier(2 * n, 2 * n, 0.05)
    lower, _ = fieller_lift_bounds(xt / n, xt / n * (1 - xt / n) / n, xc / n, xc / n * (1 - xc / n) / n, m)
    proven = [
        prob_greater(BetaPosterior.from_counts(int(a), n), BetaPosterior.from_counts(int(b), n)) >= 0.95 and low > 0
        for a, b, low in zip(xt, xc, lower)
    ]
    assert np.mean(proven) == pytest.approx(0.8, abs=0.045)  # MC SE 0.013
    # the expected-loss condition is slack at this size: relaxing it does not change the answer
    assert decider_sample_size(0.03, 0.10, expected_loss_threshold=1.0) == n


def test_minimum_sample_for_plan_covers_both_the_harm_and_the_gain():
    plan = minimum_sample_for_plan(0.03, 0.10)
    assert plan.kill_units_per_arm == decider_sample_size(0.03, -0.10)
    assert plan.prove_units_per_arm == decider_sample_size(0.03, 0.10)
    assert plan.units_per_arm == max(plan.kill_units_per_arm, plan.prove_units_per_arm)
    assert plan.n_star == 2.0 * plan.units_per_arm
    for lift in (-0.10, 0.10):
        assert decider_power(0.03, lift, plan.units_per_arm, n_star=plan.n_star) >= 0.8
    frequentist = minimum_sample_for_plan(0.03, 0.10, method="frequentist")
    assert frequentist.prove_units_per_arm == decider_sample_size(0.03, 0.10, method="frequentist")


@pytest.mark.parametrize(
    "call",
    [
        lambda: decider_sample_size(0.0, 0.1),
        lambda: decider_sample_size(0.1, 0.0),
        lambda: decider_sample_size(0.9, 0.2),
        lambda: decider_sample_size(0.1, 0.1, power=1.0),
        lambda: decider_sample_size(0.1, 0.1, method="magic"),
        lambda: decider_sample_size(0.1, -0.1, guardrails=0),
        lambda: decider_sample_size(0.1, 0.1, prior_sd=0.0),
        lambda: decider_power(0.1, 0.1, 1),
        lambda: minimum_sample_for_plan(0.1, -0.1),
    ],
)
def test_invalid_decider_designs(call):
    with pytest.raises(ValueError):
        call()
