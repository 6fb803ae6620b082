r"""One-sided asymptotic confidence sequences for anytime-valid monitoring (§6, §7 K1/K2).

The deciders look at every tick; a fixed-horizon z-test checked that often rejects a true null far
more than α of the time. A confidence sequence holds *simultaneously over all sample sizes*, so peeking
is free.

Form (Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas, "Time-uniform central limit theory and asymptotic
confidence sequences", 2021, arXiv:2103.06476, with the one-sided normal-mixture boundary of Howard,
Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences",
Ann. Statist. 2021, eq. (14)). For the mean μ̂_n of n i.i.d. units with variance σ², each one-sided bound

    μ̂_n − r_n ≤ μ    and    μ ≤ μ̂_n + r_n     hold for all n at once with probability ≥ 1 − α,

    r_n = σ̂_n · sqrt( 2(nρ² + 1)/(n²ρ²) · log(1 + sqrt(nρ² + 1)/(2α)) ),

asymptotically as σ̂_n → σ. (It is Howard's u(v) = sqrt(2(v + ρ') log(sqrt((v + ρ')/ρ')/(2α) + 1)) with
intrinsic time v = n and ρ' = 1/ρ², divided by n; it upper-bounds the boundary of the half-normal
mixture martingale 2√(ρ'/(v+ρ'))·exp(S²/2(v+ρ'))·Φ(S/√(v+ρ')), so Ville's inequality applies.)

Tuning: ρ is chosen to minimise r at n = N*, the sample expected at decision time; the width depends on
ρ only through u = N*ρ², so ρ = sqrt(u*(α)/N*) with u* found once numerically.

For the lift of two arms, the bounds are Fieller-type rather than Δ̂ ± r: with m(N) the dimensionless
multiplier sqrt(2(Nρ² + 1)/(Nρ²) · log(1 + sqrt(Nρ² + 1)/(2α))) (the role z_α plays in a fixed test;
N and N* count the same units, visitors over both arms), the ratio R = m_T/m_C is bounded by the set

    { R : (m̂_T − R·m̂_C)² ≤ m(N)²·(Var m̂_T + R²·Var m̂_C) },

i.e. by inverting a confidence sequence for the *linear* contrast m_T − R·m_C, which is a mean of
i.i.d. per-unit terms as the theory needs. The symmetric delta-method bounds Δ̂ ± se·m(N) are
asymptotically the same, but at 100 units per arm on skewed revenue they produce false kills well
above α (the ratio is skewed), which these do not. Δ = (R − 1)·sign(m_C) maps the bounds to the lift;
when m_C is not distinguishable from 0 the set is unbounded and the bounds are ±∞.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import optimize


@dataclass(frozen=True)
class ConfidenceBounds:
    estimate: float
    lower: float  # one-sided lower bound, valid at level α uniformly over time
    upper: float  # one-sided upper bound, valid at level α uniformly over time
    multiplier: float  # m(N): the anytime-valid counterpart of z_α
    n: int
    n_star: float
    rho: float
    alpha: float


def _validate(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be within (0, 0.5), got {alpha}")


def boundary_multiplier(n, rho: float, alpha: float):
    """m(n) such that r_n = (σ/√n)·m(n) — scalars or numpy arrays of n."""
    _validate(alpha)
    n = np.asarray(n, dtype=float)
    if np.any(n <= 0) or not rho > 0:
        raise ValueError("n and rho must be positive")
    u = n * rho * rho
    return np.sqrt(2 * (u + 1) / u * np.log1p(np.sqrt(u + 1) / (2 * alpha)))


def optimal_rho(n_star: float, alpha: float = 0.05) -> float:
    """ρ minimising the width at n = N* (the expected sample at decision time)."""
    _validate(alpha)
    if not n_star > 0:
        raise ValueError(f"n_star must be positive, got {n_star}")
    return float(np.sqrt(_optimal_u(float(alpha)) / n_star))


@functools.lru_cache(maxsize=64)
def _optimal_u(alpha: float) -> float:
    """u = N*·ρ² minimising the width at N*: it depends on α alone, so it is found once per α (the
    decider asks for it several times per ChangeSet per tick)."""
    def width_at_n_star(log_u: float) -> float:
        u = np.exp(log_u)
        return float(2 * (u + 1) / u * np.log1p(np.sqrt(u + 1) / (2 * alpha)))

    best = optimize.minimize_scalar(width_at_n_star, bounds=(-10.0, 15.0), method="bounded")
    return float(np.exp(best.x))


def mean_radius(n, sigma, rho: float, alpha: float):
    """r_n for the mean of n i.i.d. units with standard deviation sigma."""
    sigma, n_units = np.asarray(sigma, dtype=float), np.asarray(n, dtype=float)
    return sigma / np.sqrt(n_units) * boundary_multiplier(n, rho, alpha)


def fieller_lift_bounds(mean_t, var_mean_t, mean_c, var_mean_c, multiplier):
    """(lower, upper) bounds of Δ = (m_T − m_C)/|m_C| from the Fieller set; scalars or numpy arrays."""
    mean_t, mean_c = np.asarray(mean_t, dtype=float), np.asarray(mean_c, dtype=float)
    z2 = np.asarray(multiplier, dtype=float) ** 2
    # (m_C² − z²v_C)·R² − 2·m_T·m_C·R + (m_T² − z²v_T) ≤ 0
    a = mean_c**2 - z2 * var_mean_c
    half_b = mean_t * mean_c
    # discriminant/4 = z²·(m_T²v_C + m_C²v_T − z²v_C·v_T) ≥ 0 whenever a > 0
    spread = mean_t**2 * var_mean_c + mean_c**2 * var_mean_t - z2 * var_mean_c * var_mean_t
    root = np.sqrt(np.maximum(z2 * spread, 0.0))
    bounded = a > 0
    safe_a = np.where(bounded, a, 1.0)
    ratio_low = np.where(bounded, (half_b - root) / safe_a, -np.inf)
    ratio_high = np.where(bounded, (half_b + root) / safe_a, np.inf)
    positive = mean_c > 0
    lower = np.where(positive, ratio_low - 1, 1 - ratio_high)
    upper = np.where(positive, ratio_high - 1, 1 - ratio_low)
    return lower, upper


def lift_confidence_sequence(
    mean_t: float,
    var_mean_t: float,
    mean_c: float,
    var_mean_c: float,
    n: int,
    n_star: float,
    alpha: float = 0.05,
) -> ConfidenceBounds:
    """One-sided anytime-valid bounds on the relative lift, from n units (both arms), tuned at N*.

    Pass raw or CUPED-adjusted arm means and the variances of those means. K1 kills when `upper` < 0,
    K2 when `upper` < −5 %; a Bonferroni split over guardrails is the caller's (alpha / guardrails).
    """
    if mean_c == 0:
        raise ValueError("relative lift undefined: the control mean is 0")
    if var_mean_t < 0 or var_mean_c < 0:
        raise ValueError("variances of the means must be non-negative")
    rho = optimal_rho(n_star, alpha)
    multiplier = float(boundary_multiplier(n, rho, alpha))
    lower, upper = fieller_lift_bounds(mean_t, var_mean_t, mean_c, var_mean_c, multiplier)
    estimate = (mean_t - mean_c) / abs(mean_c)
    return ConfidenceBounds(estimate, float(lower), float(upper), multiplier, n, n_star, rho, alpha)
