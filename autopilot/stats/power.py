"""Sample size per arm for a one-sided test of a relative lift (normal approximation).

Used to tell the merchant how long a test must run and to set N* for the confidence sequence.
"""

from __future__ import annotations

import math

from scipy import stats


def _z(alpha: float, power: float) -> tuple[float, float]:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be within (0, 1), got {alpha}, {power}")
    return float(stats.norm.isf(alpha)), float(stats.norm.ppf(power))


def sample_size_proportion(
    baseline_rate: float, relative_lift: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per arm to detect p → p·(1 + lift): (z_α·√(2p̄q̄) + z_β·√(p₁q₁ + p₂q₂))² / (p₂ − p₁)².

    Pooled variance under the null, unpooled under the alternative (Fleiss, no continuity correction).
    """
    if not 0 < baseline_rate < 1:
        raise ValueError(f"baseline_rate must be within (0, 1), got {baseline_rate}")
    treated_rate = baseline_rate * (1 + relative_lift)
    if relative_lift == 0 or not 0 < treated_rate < 1:
        raise ValueError(f"relative_lift must be non-zero and keep the rate in (0, 1), got {relative_lift}")
    z_alpha, z_beta = _z(alpha, power)
    pooled = (baseline_rate + treated_rate) / 2
    spread = z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_beta * math.sqrt(
        baseline_rate * (1 - baseline_rate) + treated_rate * (1 - treated_rate)
    )
    return math.ceil(spread**2 / (treated_rate - baseline_rate) ** 2)


def sample_size_mean(
    baseline_mean: float, sd: float, relative_lift: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Units per arm to detect m → m·(1 + lift) with per-unit sd (equal in both arms): 2(z_α + z_β)²σ²/δ²."""
    if baseline_mean == 0 or not sd > 0 or relative_lift == 0:
        raise ValueError("baseline_mean and relative_lift must be non-zero and sd positive")
    z_alpha, z_beta = _z(alpha, power)
    delta = abs(baseline_mean * relative_lift)
    return math.ceil(2 * (z_alpha + z_beta) ** 2 * sd**2 / delta**2)
