"""Sample sizes against textbook values and the power they imply."""

import numpy as np
import pytest
from scipy import stats

from autopilot.stats.power import sample_size_mean, sample_size_proportion


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
