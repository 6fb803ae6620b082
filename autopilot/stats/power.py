"""Sample size per arm for a one-sided test of a relative lift (normal approximation).

Used to tell the merchant how long a test must run and to set N* for the confidence sequence.
`sample_size_proportion` / `sample_size_mean` size a fixed-horizon z-test; `decider_sample_size` and
`minimum_sample_for_plan` size the decider's own rules (anytime-valid kill, Bayesian or sequential
proof), which need more units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import optimize, stats

from autopilot.stats.sequential import boundary_multiplier, optimal_rho


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


# ------------------------------------------------------------------------------------------------
# Sample size for the decider's own rules (AUTOPILOT.md §7 K1/K2 and prove)
# ------------------------------------------------------------------------------------------------
#
# The fixed-horizon sizes above answer "one z-test at the end"; the decider instead kills with an
# anytime-valid confidence sequence (wider than a z-interval: its multiplier m(N) plays the role of
# z_α, ≈ 2.78 at α = 5 % and ≈ 3.18 at α/3 where a z-test has 1.64) and proves with the Bayesian rule
# (or the confidence sequence's lower bound). The functions below size an experiment for *those*
# rules, analytically (normal approximation), with the multiplier taken from
# `autopilot.stats.sequential` exactly as the decider computes it.
#
# Power is computed for a single look at the final sample N = 2n. The decider looks at every tick,
# and an effect that crosses a bound earlier is acted on earlier, so the probability of acting *by*
# that sample is at least the power reported here: the sizes are conservative.

# The decider's defaults, repeated here so that the statistics package does not import the decider
# (tests/unit/test_stats_power.py checks that they agree with autopilot.decider).
DECIDER_K2_LIFT_LIMIT = -0.05
DECIDER_PROB_THRESHOLD = 0.95
DECIDER_EXPECTED_LOSS_THRESHOLD = 0.0025
HARD_GUARDRAILS = 3  # gross profit per visitor, conversion, checkout errors
DECIDER_MIN_UNITS_PER_ARM = 100
DECIDER_MIN_EXPECTED_COUNT = 5
_MAX_UNITS_PER_ARM = 10**10


def _check_design(baseline_rate: float, relative_lift: float) -> float:
    if not 0 < baseline_rate < 1:
        raise ValueError(f"baseline_rate must be within (0, 1), got {baseline_rate}")
    treated_rate = baseline_rate * (1 + relative_lift)
    if relative_lift == 0 or not 0 < treated_rate < 1:
        raise ValueError(f"relative_lift must be non-zero and keep the rate in (0, 1), got {relative_lift}")
    return treated_rate


def sequence_multiplier(units: float, n_star: float, alpha: float) -> float:
    """m(N) of the decider's confidence sequence at N units (both arms), tuned at N*.

    At N = N* this is the smallest multiplier the sequence reaches, and it depends on α only.
    """
    rho = optimal_rho(n_star, alpha)
    return float(boundary_multiplier(units, rho, alpha))


def _bound_crossing_power(
    mean_t: float, var_t: float, mean_c: float, var_c: float, units_per_arm: float, bound: float,
    multiplier: float, side: str,
) -> float:
    """P(the Fieller bound of the lift crosses `bound` at one look), normal approximation.

    The upper bound of the Fieller set is below b exactly when R = 1 + b lies above the set, i.e. when
    (R·m̂_C − m̂_T) / √(v_T + R²·v_C) > m (and symmetrically for the lower bound): a z-test of the linear
    contrast m_T − R·m_C against the critical value m. Per-unit variances var_t, var_c.
    """
    ratio = 1 + bound
    contrast = ratio * mean_c - mean_t if side == "upper" else mean_t - ratio * mean_c
    sd = math.sqrt((var_t + ratio * ratio * var_c) / units_per_arm)
    return float(stats.norm.cdf(contrast / sd - multiplier))


def _loss_z(sd: float, expected_loss_threshold: float) -> float:
    """Smallest z = μ/σ with Gaussian expected loss σ·(φ(z) − z·Φ(−z)) ≤ the threshold."""

    def excess(z: float) -> float:
        return sd * (stats.norm.pdf(z) - z * stats.norm.cdf(-z)) - expected_loss_threshold

    low, high = -1.0, 1.0
    while excess(low) <= 0:  # the loss condition already holds at low: move the bracket down
        low, high = 2 * low, low
        if low < -1e3:
            return -math.inf
    while excess(high) > 0:
        low, high = high, 2 * high
    return float(optimize.brentq(excess, low, high, xtol=1e-10))


def decider_power(
    baseline_rate: float,
    relative_lift: float,
    units_per_arm: float,
    *,
    alpha: float = 0.05,
    guardrails: int = HARD_GUARDRAILS,
    primary: bool = True,
    method: str = "bayesian",
    n_star: float | None = None,
    prob_threshold: float = DECIDER_PROB_THRESHOLD,
    expected_loss_threshold: float = DECIDER_EXPECTED_LOSS_THRESHOLD,
    prior_sd: float | None = None,
) -> float:
    """Probability that the decider acts on a conversion rate p → p·(1 + lift) at n units per arm.

    A negative lift is a harm, and acting is a rollback: K1 on the conversion guardrail (its upper
    confidence-sequence bound below 0 at α/guardrails, Bonferroni as in the decider) or, when the metric
    is also the primary, K2 (upper bound below −5 % at α); the larger of the two powers is returned,
    a lower bound on P(K1 or K2). A positive lift must be proven on the primary:

    - "bayesian": P(Δ > 0) ≥ prob_threshold (the Beta posteriors' P(p_T > p_C) ≈ Φ(d̂/√(v_T + v_C))) and
      expected relative loss ≤ expected_loss_threshold (Gaussian on the lift with the delta-method σ,
      optionally shrunk by a N(0, prior_sd²) prior); both conditions grow with the same estimate, so
      the power is the smaller of the two probabilities;
    - "frequentist": the lower confidence-sequence bound above 0 at α.

    The confidence sequence is tuned at n_star units (both arms); None means the design itself,
    n_star = 2·units_per_arm. One look at N = 2·units_per_arm (see the section comment): conservative.
    """
    treated_rate = _check_design(baseline_rate, relative_lift)
    if not units_per_arm >= 2:
        raise ValueError(f"units_per_arm must be at least 2, got {units_per_arm}")
    if guardrails < 1:
        raise ValueError(f"guardrails must be at least 1, got {guardrails}")
    if method not in ("bayesian", "frequentist"):
        raise ValueError(f"method must be 'bayesian' or 'frequentist', got {method!r}")
    units = 2.0 * units_per_arm
    tuned_at = units if n_star is None else n_star
    p_c, p_t = baseline_rate, treated_rate
    var_c, var_t = p_c * (1 - p_c), p_t * (1 - p_t)

    if relative_lift < 0:
        k1 = _bound_crossing_power(
            p_t, var_t, p_c, var_c, units_per_arm, 0.0,
            sequence_multiplier(units, tuned_at, alpha / guardrails), "upper",
        )
        if not primary:
            return k1
        k2 = _bound_crossing_power(
            p_t, var_t, p_c, var_c, units_per_arm, DECIDER_K2_LIFT_LIMIT,
            sequence_multiplier(units, tuned_at, alpha), "upper",
        )
        return max(k1, k2)

    if method == "frequentist":
        return _bound_crossing_power(
            p_t, var_t, p_c, var_c, units_per_arm, 0.0, sequence_multiplier(units, tuned_at, alpha), "lower"
        )

    if not 0.5 <= prob_threshold < 1 or not expected_loss_threshold > 0:
        raise ValueError("prob_threshold must be within [0.5, 1) and expected_loss_threshold positive")
    difference_sd = math.sqrt((var_t + var_c) / units_per_arm)
    lift = relative_lift
    lift_sd = math.sqrt(var_t / (units_per_arm * p_c**2) + p_t**2 * var_c / (units_per_arm * p_c**4))
    prob_power = float(stats.norm.cdf((p_t - p_c) / difference_sd - stats.norm.ppf(prob_threshold)))
    if prior_sd is None:
        posterior_sd, stretch = lift_sd, 1.0
    else:
        if not prior_sd > 0:
            raise ValueError(f"prior_sd must be positive, got {prior_sd}")
        # posterior mean Δ̂·τ²/(τ² + σ²), sd στ/√(τ² + σ²): its z is Δ̂/σ · τ/√(τ² + σ²)
        posterior_sd = lift_sd * prior_sd / math.sqrt(prior_sd**2 + lift_sd**2)
        stretch = math.sqrt(prior_sd**2 + lift_sd**2) / prior_sd
        prob_power = float(
            stats.norm.cdf((p_t - p_c) / difference_sd - stretch * stats.norm.ppf(prob_threshold))
        )
    loss_power = float(stats.norm.cdf(lift / lift_sd - stretch * _loss_z(posterior_sd, expected_loss_threshold)))
    # the decider's Bayesian proof also needs the anytime-valid lower bound above 0 (autopilot/decider.py)
    bound_power = _bound_crossing_power(
        p_t, var_t, p_c, var_c, units_per_arm, 0.0, sequence_multiplier(units, tuned_at, alpha), "lower"
    )
    return min(prob_power, loss_power, bound_power)


def decider_sample_size(
    baseline_rate: float,
    relative_lift: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    guardrails: int = HARD_GUARDRAILS,
    primary: bool = True,
    method: str = "bayesian",
    n_star: float | None = None,
    prob_threshold: float = DECIDER_PROB_THRESHOLD,
    expected_loss_threshold: float = DECIDER_EXPECTED_LOSS_THRESHOLD,
    prior_sd: float | None = None,
) -> int:
    """Units per arm at which the decider rolls back (lift < 0) or proves (lift > 0) with `power`.

    The smallest n with `decider_power(…, n, …)` ≥ power (see there for the rules and the
    approximation), and at least the decider's minimum data (100 units and n·p, n·(1−p) ≥ 5 per arm).
    With n_star None the confidence sequence is tuned at the design, N* = 2n. Analytic, no simulation.

    For −10 % on a 3 % conversion rate this is ≈ 2.6× the fixed-horizon `sample_size_proportion`:
    the price of looking at every tick (and of the Bonferroni split over the guardrails) for the kill.
    Runtime is the caller's: a proof also waits for the minimum runtime, so the days needed are
    max(minimum runtime, n / daily units per arm).
    """
    _check_design(baseline_rate, relative_lift)
    if not 0 < power < 1:
        raise ValueError(f"power must be within (0, 1), got {power}")

    def reaches(n: int) -> bool:
        return decider_power(
            baseline_rate, relative_lift, n, alpha=alpha, guardrails=guardrails, primary=primary,
            method=method, n_star=n_star, prob_threshold=prob_threshold,
            expected_loss_threshold=expected_loss_threshold, prior_sd=prior_sd,
        ) >= power

    low, high = 1, 2  # invariant: not reaches(low) (or low = 1), reaches(high)
    while not reaches(high):
        low, high = high, 2 * high
        if high > _MAX_UNITS_PER_ARM:
            raise ValueError("the requested power is not reachable with this design")
    while high - low > 1:
        middle = (low + high) // 2
        if reaches(middle):
            high = middle
        else:
            low = middle
    treated_rate = baseline_rate * (1 + relative_lift)
    rarest = min(baseline_rate, 1 - baseline_rate, treated_rate, 1 - treated_rate)
    return max(high, DECIDER_MIN_UNITS_PER_ARM, math.ceil(DECIDER_MIN_EXPECTED_COUNT / rarest))


@dataclass(frozen=True)
class PlanSample:
    """The minimum sample of a proof plan: by `units_per_arm` both a harm and a gain of the smallest
    lift are acted on with the requested power, with the confidence sequence tuned at `n_star`."""

    units_per_arm: int
    n_star: float  # units over both arms: ProofPlan.n_star
    kill_units_per_arm: int  # rolling back −lift, on its own (sequence tuned at its own design)
    prove_units_per_arm: int  # proving +lift, on its own


def minimum_sample_for_plan(
    baseline_rate: float,
    smallest_lift: float,
    *,
    method: str = "bayesian",
    alpha: float = 0.05,
    power: float = 0.8,
    guardrails: int = HARD_GUARDRAILS,
    prob_threshold: float = DECIDER_PROB_THRESHOLD,
    expected_loss_threshold: float = DECIDER_EXPECTED_LOSS_THRESHOLD,
    prior_sd: float | None = None,
) -> PlanSample:
    """Fill a proof plan for a conversion primary: units per arm and N* = 2·units per arm.

    The plan must both roll back a harm of −smallest_lift (K1/K2) and prove a gain of +smallest_lift
    (by `method`), so it needs the larger of the two sizes. Tuning the sequence at that larger N* makes
    it slightly wider at the kill size but narrowest at the plan's size, so at `units_per_arm` both
    rules have at least the requested power.
    """
    if not smallest_lift > 0:
        raise ValueError(f"smallest_lift must be positive, got {smallest_lift}")
    common = {"alpha": alpha, "power": power, "guardrails": guardrails, "primary": True}
    kill = decider_sample_size(baseline_rate, -smallest_lift, **common)
    prove = decider_sample_size(
        baseline_rate, smallest_lift, method=method, prob_threshold=prob_threshold,
        expected_loss_threshold=expected_loss_threshold, prior_sd=prior_sd, **common,
    )
    units = max(kill, prove)
    return PlanSample(units, float(2 * units), kill, prove)
