"""The decider tick as one pure function (AUTOPILOT.md §7).

`decide(inputs)` takes every fact one tick needs — sufficient statistics per arm, the planned split,
exposures, data-health facts, guardrail violations, runtime and the proof plan — and returns a
`Decision`. No I/O, no clock: the worker gathers the facts, this module only applies the rules,
strictly in order, and the first rule that fires wins:

1. invariants (no statistics)            → "revert" / "block",  rule "invariant:<rule>"
2. execution gate (broken data)          → "hold",              rule "gate:<which>"
3. minimum data (primary metric)        → "hold",              rule "min_data"
4. kill: K1 hard guardrail, K2 primary   → "rollback",          rule "K1:<metric>" / "K2"
5. prove (after the minimum runtime)     → "prove",             rule "prove:bayesian" / "prove:frequentist"
   (the Bayesian rule also needs the anytime-valid lower bound above 0: it is checked at every tick)
6. otherwise                             → "continue" (or "stop_futile", rule "futility")

All lifts are relative, Δ = (m_T − m_C)/|m_C|, and oriented so that positive is good: for a metric
where lower is better (checkout errors) the oriented lift is −Δ. Kill and frequentist-prove decisions
use the anytime-valid confidence sequence, because the decider peeks at every tick.

The Bayesian expected loss is *relative*: E[max(−Δ, 0)] in units of the lift, so the default
threshold 0.0025 means "shipping costs at most 0.25 % of the control mean in expectation".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from autopilot.guardrails import Violation
from autopilot.stats.bayes import (
    BetaPosterior,
    LiftEstimate,
    expected_relative_loss,
    lift_posterior,
    prob_greater,
)
from autopilot.stats.cuped import cuped_adjust, cuped_theta, pooled_covariate_mean
from autopilot.stats.sequential import ConfidenceBounds, lift_confidence_sequence
from autopilot.stats.srm import sample_ratio_mismatch
from autopilot.stats.sufficient import ArmStats

# --- thresholds from §7 ---------------------------------------------------------------------------

MIN_EVENT_DELIVERY_RATIO = 0.995
MIN_JOB_SUCCESS_RATIO = 0.999
MAX_HOURS_WITHOUT_DATA = 24.0
MAX_MULTIPLE_EXPOSURE_RATIO = 0.01
MIN_UNITS_PER_ARM = 100
MIN_EXPECTED_COUNT = 5  # n·p and n·(1−p) for proportions: below this the normal approximation fails
DEFAULT_MINIMUM_RUNTIME_DAYS = 7.0
K2_LIFT_LIMIT = -0.05  # the merchant-facing "worse than 5 % with significance"

GROSS_PROFIT_PER_VISITOR = "gross_profit_per_visitor"
CONVERSION = "conversion"
CHECKOUT_ERRORS = "checkout_errors"

RULE_TTL = "changeset_ttl"

Action = Literal["revert", "block", "hold", "rollback", "prove", "continue", "stop_futile"]
ProofMethod = Literal["bayesian", "frequentist"]


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricArms:
    """One metric's sufficient statistics in both arms."""

    treatment: ArmStats
    control: ArmStats
    is_proportion: bool = False  # a 0/1 metric: n·p ≥ 5 applies, and the Beta posterior if primary
    higher_is_better: bool = True  # False for checkout errors: an increase is the harm


@dataclass(frozen=True)
class GuardrailMetric:
    name: str
    arms: MetricArms


def hard_guardrails(
    gross_profit_per_visitor: MetricArms, conversion: MetricArms, checkout_errors: MetricArms
) -> tuple[GuardrailMetric, ...]:
    """The three hard guardrails of §7 K1, with their names and directions fixed."""
    return (
        GuardrailMetric(GROSS_PROFIT_PER_VISITOR, gross_profit_per_visitor),
        GuardrailMetric(CONVERSION, MetricArms(conversion.treatment, conversion.control, True, True)),
        GuardrailMetric(
            CHECKOUT_ERRORS, MetricArms(checkout_errors.treatment, checkout_errors.control, True, False)
        ),
    )


@dataclass(frozen=True)
class Exposures:
    """Units exposed per arm; units seen in more than one variant are counted apart, in neither arm."""

    treatment_units: int
    control_units: int
    multiple_variant_units: int = 0

    @property
    def multiple_exposure_ratio(self) -> float:
        total = self.treatment_units + self.control_units + self.multiple_variant_units
        return self.multiple_variant_units / total if total else 0.0


@dataclass(frozen=True)
class DataHealth:
    event_delivery_ratio: float  # delivered / emitted events, 0–1
    job_success_ratio: float  # succeeded / run pipeline jobs, 0–1
    checkout_incident: bool
    hours_since_last_data: float


@dataclass(frozen=True)
class ProofPlan:
    """How this experiment may be proven, fixed before it starts."""

    method: ProofMethod
    n_star: float  # units (both arms) expected at decision time: tunes the confidence sequence
    prob_threshold: float = 0.95  # Bayesian: P(Δ > 0) at least this
    expected_loss_threshold: float = 0.0025  # Bayesian: relative expected loss at most this
    prior_sd: float | None = None  # Gaussian lift prior; None is flat, 0.3 the sceptical N(0, 0.3²)
    smallest_lift_worth_keeping: float | None = None  # enables the futility stop

    def __post_init__(self) -> None:
        if self.method not in ("bayesian", "frequentist"):
            raise ValueError(f"method must be 'bayesian' or 'frequentist', got {self.method!r}")
        if not self.n_star > 0:
            raise ValueError(f"n_star must be positive, got {self.n_star}")


@dataclass(frozen=True)
class TickInputs:
    primary: MetricArms
    guardrail_metrics: tuple[GuardrailMetric, ...]
    planned_split: tuple[float, float]  # (treatment, control) weights
    exposures: Exposures
    health: DataHealth
    plan: ProofPlan
    runtime_days: float
    minimum_runtime_days: float = DEFAULT_MINIMUM_RUNTIME_DAYS
    violations: tuple[Violation, ...] = ()  # from autopilot.guardrails.check
    changeset_expired: bool = False  # the ChangeSet's TTL has passed
    change_is_live: bool = True  # a live change is reverted; one not yet applied is blocked
    data_watermark: str | None = None  # up to when the data is complete, recorded as given

    def __post_init__(self) -> None:
        if not self.primary.higher_is_better:
            raise ValueError("the primary metric must be one where higher is better")
        if not self.guardrail_metrics:
            raise ValueError("at least one hard guardrail metric is needed")


# --- output ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)  # JSON-safe: recorded in the decision event


# --- pure helpers ---------------------------------------------------------------------------------


def _json_number(value: float | None) -> float | None:
    # ±∞ bounds (control mean indistinguishable from 0) are not JSON: record them as null
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _analysis_means(arms: MetricArms) -> tuple[float, float, float, float]:
    """CUPED-adjusted (mean_T, var mean_T, mean_C, var mean_C); with no covariate θ = 0, i.e. raw."""
    theta = cuped_theta(arms.treatment, arms.control)
    mu_x = pooled_covariate_mean(arms.treatment, arms.control)
    adj_t = cuped_adjust(arms.treatment, theta, mu_x)
    adj_c = cuped_adjust(arms.control, theta, mu_x)
    return adj_t.mean, adj_t.var_mean, adj_c.mean, adj_c.var_mean


@dataclass(frozen=True)
class OrientedBounds:
    """Confidence-sequence bounds on the lift, oriented so that positive is good."""

    lift: float
    lower: float
    upper: float
    sigma: float  # delta-method standard error of the lift
    bounds: ConfidenceBounds

    def as_numbers(self) -> dict[str, Any]:
        return {
            "lift": _json_number(self.lift),
            "sigma": _json_number(self.sigma),
            "lower": _json_number(self.lower),
            "upper": _json_number(self.upper),
            "alpha": self.bounds.alpha,
            "multiplier": _json_number(self.bounds.multiplier),
            "n": self.bounds.n,
        }


def oriented_bounds(arms: MetricArms, n_star: float, alpha: float) -> OrientedBounds:
    mean_t, var_t, mean_c, var_c = _analysis_means(arms)
    n = arms.treatment.n + arms.control.n
    cs = lift_confidence_sequence(mean_t, var_t, mean_c, var_c, n, n_star, alpha)
    sigma = math.sqrt(var_t / mean_c**2 + mean_t**2 * var_c / mean_c**4)
    if arms.higher_is_better:
        return OrientedBounds(cs.estimate, cs.lower, cs.upper, sigma, cs)
    # lower is better: the good-direction lift is −Δ, whose upper bound is −(lower bound of Δ)
    return OrientedBounds(-cs.estimate, -cs.upper, -cs.lower, sigma, cs)


def _gate_failure(inputs: TickInputs, srm_mismatch: bool) -> tuple[str, str] | None:
    """The first broken execution precondition as (which, why), or None when all are green."""
    health, exposures = inputs.health, inputs.exposures
    if health.event_delivery_ratio < MIN_EVENT_DELIVERY_RATIO:
        return "event_delivery", f"event delivery {health.event_delivery_ratio:.4f} < {MIN_EVENT_DELIVERY_RATIO}"
    if health.job_success_ratio < MIN_JOB_SUCCESS_RATIO:
        return "job_success", f"job success {health.job_success_ratio:.4f} < {MIN_JOB_SUCCESS_RATIO}"
    if health.checkout_incident:
        return "checkout_incident", "an incident on checkout is open"
    if srm_mismatch:
        return "srm", "sample ratio mismatch against the planned split"
    if health.hours_since_last_data >= MAX_HOURS_WITHOUT_DATA:
        return "no_data", f"no data for {health.hours_since_last_data:g} h"
    if exposures.multiple_exposure_ratio > MAX_MULTIPLE_EXPOSURE_RATIO:
        return "multiple_exposures", f"{exposures.multiple_exposure_ratio:.2%} of units saw several variants"
    return None


def _min_data_shortfall(name: str, arms: MetricArms) -> str | None:
    """Why this metric cannot be analysed yet, or None."""
    for arm_name, arm in (("treatment", arms.treatment), ("control", arms.control)):
        if arm.n < MIN_UNITS_PER_ARM:
            return f"{name}: {arm.n} units in {arm_name} < {MIN_UNITS_PER_ARM}"
        if arms.is_proportion:
            successes = arm.sum_y
            if min(successes, arm.n - successes) < MIN_EXPECTED_COUNT:
                return f"{name}: n·p or n·(1−p) < {MIN_EXPECTED_COUNT} in {arm_name}"
        elif arm.var_y <= 0:
            return f"{name}: no variation in {arm_name}"
    if arms.control.mean_y == 0:
        return f"{name}: control mean is 0, the relative lift is undefined"
    _, var_t, _, var_c = _analysis_means(arms)
    if not (var_t > 0 and var_c > 0):
        # a covariate that predicts the metric exactly leaves no variance after CUPED: no test is possible
        return f"{name}: no variation left after the CUPED adjustment"
    return None


def _bayesian_primary(arms: MetricArms, prior_sd: float | None) -> tuple[float, float]:
    """(P(Δ > 0), relative expected loss) on the primary metric."""
    if arms.is_proportion:
        treatment = BetaPosterior.from_counts(round(arms.treatment.sum_y), arms.treatment.n)
        control = BetaPosterior.from_counts(round(arms.control.sum_y), arms.control.n)
        return prob_greater(treatment, control), expected_relative_loss(treatment, control)
    mean_t, var_t, mean_c, var_c = _analysis_means(arms)
    lift = (mean_t - mean_c) / abs(mean_c)
    se = math.sqrt(var_t / mean_c**2 + mean_t**2 * var_c / mean_c**4)
    posterior = lift_posterior(LiftEstimate(lift, se), prior_sd)
    return posterior.prob_positive(), posterior.expected_loss()


# --- the tick -------------------------------------------------------------------------------------


def decide(inputs: TickInputs, *, alpha: float = 0.05) -> Decision:
    """Apply §7 to one tick's facts, in order; the first rule that fires decides."""
    exposures = inputs.exposures
    observed = (exposures.treatment_units, exposures.control_units)
    srm = sample_ratio_mismatch(observed, inputs.planned_split) if sum(observed) > 0 else None
    numbers: dict[str, Any] = {
        "data_watermark": inputs.data_watermark,
        "alpha": alpha,
        "n_star": float(inputs.plan.n_star),
        "n_treatment": exposures.treatment_units,
        "n_control": exposures.control_units,
        "multiple_exposure_ratio": exposures.multiple_exposure_ratio,
        "srm_p": None if srm is None else srm.p_value,
        "runtime_days": float(inputs.runtime_days),
        "minimum_runtime_days": float(inputs.minimum_runtime_days),
        "method": inputs.plan.method,
    }

    def decision(action: Action, rule: str, reason: str) -> Decision:
        return Decision(action, rule, reason, {**numbers, "action": action, "rule": rule})

    # 1. invariants: no statistics, a broken invariant is acted on even on broken data
    invariant_action: Action = "revert" if inputs.change_is_live else "block"
    if inputs.violations:
        first = inputs.violations[0]
        numbers["violations"] = [f"{v.rule}:{v.sku}" for v in inputs.violations]
        return decision(invariant_action, f"invariant:{first.rule}", first.message)
    if inputs.changeset_expired:
        return decision(invariant_action, f"invariant:{RULE_TTL}", "the ChangeSet's TTL has passed")

    # 2. execution gate: never prove or kill on broken data
    gate = _gate_failure(inputs, srm is not None and srm.mismatch)
    if gate is not None:
        which, why = gate
        return decision("hold", f"gate:{which}", why)

    # 3. minimum data, for the primary metric. A guardrail short of data (checkout errors are rare:
    # n·p < 5 for a long time) cannot kill yet, but must not hold the whole experiment either:
    # it waits, and is named in the numbers.
    shortfall = _min_data_shortfall("primary", inputs.primary)
    if shortfall is not None:
        return decision("hold", "min_data", shortfall)
    waiting = {g.name: why for g in inputs.guardrail_metrics if (why := _min_data_shortfall(g.name, g.arms))}
    numbers["guardrails_waiting_for_data"] = waiting

    # 4. kill. K1: Bonferroni over all the hard guardrails (the waiting ones included, so a
    # guardrail becoming ready never loosens the others) keeps the family-wise false-kill rate ≤ α
    guardrail_alpha = alpha / len(inputs.guardrail_metrics)
    guardrail_bounds = {
        g.name: oriented_bounds(g.arms, inputs.plan.n_star, guardrail_alpha)
        for g in inputs.guardrail_metrics if g.name not in waiting
    }
    numbers["guardrails"] = {name: b.as_numbers() for name, b in guardrail_bounds.items()}
    primary = oriented_bounds(inputs.primary, inputs.plan.n_star, alpha)
    numbers["primary"] = primary.as_numbers()
    numbers["delta"] = _json_number(primary.lift)
    numbers["sigma"] = _json_number(primary.sigma)
    numbers["lower"] = _json_number(primary.lower)
    numbers["upper"] = _json_number(primary.upper)
    for name, bounds in guardrail_bounds.items():
        if bounds.upper < 0:
            return decision("rollback", f"K1:{name}", f"{name} is harmed: upper bound {bounds.upper:.4f} < 0")
    if primary.upper < K2_LIFT_LIMIT:
        return decision("rollback", "K2", f"primary upper bound {primary.upper:.4f} < {K2_LIFT_LIMIT}")

    # 5. prove: only after the minimum runtime, so weekly cycles are covered before shipping
    plan = inputs.plan
    if inputs.runtime_days >= inputs.minimum_runtime_days:
        if plan.method == "bayesian":
            prob_positive, loss = _bayesian_primary(inputs.primary, plan.prior_sd)
            numbers["prob_positive"] = prob_positive
            numbers["expected_loss"] = loss
            # The posterior alone is a single-look test, and the decider looks at every tick: on A/A
            # data it "proves" ~9 % of the time (tests/unit/test_statistics_simulation.py). The
            # anytime-valid lower bound above 0 keeps false proofs ≤ α however often it looks.
            if (prob_positive >= plan.prob_threshold and loss <= plan.expected_loss_threshold
                    and primary.lower > 0):
                return decision(
                    "prove", "prove:bayesian",
                    f"P(Δ>0) = {prob_positive:.4f}, expected loss = {loss:.5f}, lower bound {primary.lower:.4f} > 0",
                )
        elif primary.lower > 0:
            return decision("prove", "prove:frequentist", f"primary lower bound {primary.lower:.4f} > 0")

    # 6. keep measuring, unless even the optimistic bound is not worth keeping
    floor = plan.smallest_lift_worth_keeping
    if floor is not None and primary.upper < floor:
        return decision("stop_futile", "futility", f"primary upper bound {primary.upper:.4f} < {floor}")
    return decision("continue", "continue", "no rule fired; keep measuring")
