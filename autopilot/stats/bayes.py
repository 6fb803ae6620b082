"""Bayesian summaries the deciders act on (§6).

Conversion: each arm's rate gets a Beta(1 + conversions, 1 + n − conversions) posterior (uniform prior,
closed form). P(T > C) uses the exact finite sum for integer parameters (Evan Miller's formula);
intervals and expected relative loss integrate one posterior against the other's CDF by quadrature.

Continuous metrics: the relative lift Δ = (m_T − m_C)/|m_C| with a delta-method standard error, and a
Gaussian posterior on Δ (flat prior by default, optionally N(0, 0.3²) which shrinks noisy early lifts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special, stats

from autopilot.stats.sufficient import ArmStats

UNIFORM_PRIOR = (1.0, 1.0)
SKEPTICAL_LIFT_PRIOR_SD = 0.3  # §6: lifts beyond ±60 % are implausible a priori
_QUAD = {"epsabs": 1e-11, "epsrel": 1e-9, "limit": 200}


# ------------------------------------------------------------------------------------------------
# Beta-Binomial (conversion)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BetaPosterior:
    alpha: float
    beta: float

    @classmethod
    def from_counts(cls, conversions: int, n: int) -> BetaPosterior:
        if n <= 0:
            raise ValueError(f"a conversion posterior needs n > 0 units, got n={n}")
        if not 0 <= conversions <= n:
            raise ValueError(f"conversions must be within [0, n], got {conversions} of {n}")
        return cls(UNIFORM_PRIOR[0] + conversions, UNIFORM_PRIOR[1] + n - conversions)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    @property
    def sd(self) -> float:
        total = self.alpha + self.beta
        return float(np.sqrt(self.alpha * self.beta / (total * total * (total + 1))))

    # special functions, not scipy.stats frozen distributions: quadrature calls these thousands of times
    def cdf(self, value: float) -> float:
        return float(special.betainc(self.alpha, self.beta, min(max(value, 0.0), 1.0)))

    def sf(self, value: float) -> float:
        return float(special.betaincc(self.alpha, self.beta, min(max(value, 0.0), 1.0)))

    def ppf(self, quantile: float) -> float:
        return float(special.betaincinv(self.alpha, self.beta, quantile))


@dataclass(frozen=True)
class Interval:
    lower: float
    upper: float


def prob_greater(treatment: BetaPosterior, control: BetaPosterior) -> float:
    """P(p_T > p_C), exact for integer alpha (always so with the uniform prior and counts).

    P(p_T > p_C) = Σ_{i=0}^{α_T−1} B(α_C+i, β_C+β_T) / ((β_T+i) B(1+i, β_T) B(α_C, β_C)).
    The sum runs over the smaller alpha (by symmetry, P(T > C) = 1 − P(C > T) for continuous posteriors).
    """
    for value in (treatment.alpha, control.alpha):
        if value != int(value):
            raise ValueError("the closed-form sum needs integer alpha; use prob_greater_numeric")
    if treatment.alpha <= control.alpha:
        return _closed_form_greater(treatment, control)
    return 1.0 - _closed_form_greater(control, treatment)


def _closed_form_greater(b: BetaPosterior, a: BetaPosterior) -> float:
    i = np.arange(int(b.alpha), dtype=float)
    log_terms = (
        special.betaln(a.alpha + i, a.beta + b.beta)
        - np.log(b.beta + i)
        - special.betaln(1 + i, b.beta)
        - special.betaln(a.alpha, a.beta)
    )
    return float(np.clip(np.exp(special.logsumexp(log_terms)), 0.0, 1.0))


def _expect_over_quantiles(posterior: BetaPosterior, integrand) -> float:
    """E[g(p)] for p ~ posterior, as ∫₀¹ g(Q(u)) du: bounded integrand, no tuning of the support."""
    value, _ = integrate.quad(lambda u: integrand(posterior.ppf(u)), 0.0, 1.0, **_QUAD)
    return float(value)


def prob_greater_numeric(treatment: BetaPosterior, control: BetaPosterior, shift: float = 0.0) -> float:
    """P(p_T − p_C > shift) by quadrature (any real parameters).

    Integrates over the narrower posterior so the other one's CDF is smooth across its quantiles.
    """
    if treatment.sd <= control.sd:
        return _expect_over_quantiles(treatment, lambda t: control.cdf(t - shift))
    return _expect_over_quantiles(control, lambda c: treatment.sf(c + shift))


def _prob_ratio_greater(treatment: BetaPosterior, control: BetaPosterior, factor: float) -> float:
    """P(p_T > factor · p_C) by quadrature over the control posterior."""
    return _expect_over_quantiles(control, lambda c: treatment.sf(factor * c))


def difference_interval(
    treatment: BetaPosterior, control: BetaPosterior, level: float = 0.95
) -> Interval:
    """Equal-tailed credible interval of p_T − p_C."""
    return _equal_tailed(lambda d: prob_greater_numeric(treatment, control, d), -1.0, 1.0, level)


def lift_interval(treatment: BetaPosterior, control: BetaPosterior, level: float = 0.95) -> Interval:
    """Equal-tailed credible interval of the relative lift p_T / p_C − 1."""
    # the lift is unbounded above; p_T ≤ 1 and p_C ≥ its 1e-12 quantile bound it in practice
    high = 1.0 / max(float(control.ppf(1e-12)), 1e-300)
    return _equal_tailed(lambda l: _prob_ratio_greater(treatment, control, 1.0 + l), -1.0, high, level)


def _equal_tailed(survival, low: float, high: float, level: float) -> Interval:
    if not 0 < level < 1:
        raise ValueError(f"level must be within (0, 1), got {level}")
    tail = (1.0 - level) / 2

    def quantile(q: float) -> float:
        return optimize.brentq(lambda v: (1.0 - survival(v)) - q, low, high, xtol=1e-10)

    return Interval(quantile(tail), quantile(1.0 - tail))


def expected_loss(treatment: BetaPosterior, control: BetaPosterior) -> float:
    """E[max(p_C − p_T, 0)]: conversion rate lost (absolute) by shipping the treatment.

    Closed form: E[p_C·1{p_C>p_T}] − E[p_T·1{p_C>p_T}] = m_C·P(C⁺ > T) − m_T·P(C > T⁺), where X⁺ is the
    posterior with alpha + 1 (because p·Beta(a, b) density ∝ Beta(a + 1, b) density).
    """
    control_plus = BetaPosterior(control.alpha + 1, control.beta)
    treatment_plus = BetaPosterior(treatment.alpha + 1, treatment.beta)
    loss = control.mean * prob_greater(control_plus, treatment) - treatment.mean * prob_greater(
        control, treatment_plus
    )
    return max(loss, 0.0)


def expected_relative_loss(treatment: BetaPosterior, control: BetaPosterior) -> float:
    """E[max(−(p_T − p_C)/p_C, 0)] = E[max(1 − p_T/p_C, 0)]: relative lift lost by shipping.

    For fixed c: E[max(1 − p_T/c, 0)] = F_T(c) − (m_T/c)·F_{T⁺}(c); then average over p_C.
    """
    treatment_plus = BetaPosterior(treatment.alpha + 1, treatment.beta)
    mean_t = treatment.mean

    def conditional(c: float) -> float:
        if c <= 0:
            return 0.0
        return treatment.cdf(c) - mean_t / c * treatment_plus.cdf(c)

    return max(_expect_over_quantiles(control, conditional), 0.0)


# ------------------------------------------------------------------------------------------------
# Gaussian posterior on the relative lift (continuous metrics)
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiftEstimate:
    lift: float
    standard_error: float


def delta_method_lift(mean_t, var_mean_t, mean_c, var_mean_c):
    """Δ = (m_T − m_C)/|m_C| and its delta-method standard error; scalars or numpy arrays.

    With r = m_T/m_C, Var(r) ≈ Var(m_T)/m_C² + m_T²·Var(m_C)/m_C⁴ (independent arms); Δ = ±(r − 1)
    has the same variance. Returns (lift, standard_error).
    """
    mean_c = np.asarray(mean_c, dtype=float)
    if np.any(mean_c == 0):
        raise ValueError("relative lift undefined: the control mean is 0")
    lift = (mean_t - mean_c) / np.abs(mean_c)
    variance = var_mean_t / mean_c**2 + mean_t**2 * var_mean_c / mean_c**4
    return lift, np.sqrt(variance)


def relative_lift(treatment: ArmStats, control: ArmStats) -> LiftEstimate:
    lift, se = delta_method_lift(
        treatment.mean_y, treatment.var_mean_y, control.mean_y, control.var_mean_y
    )
    return LiftEstimate(float(lift), float(se))


@dataclass(frozen=True)
class GaussianPosterior:
    mean: float
    sd: float

    def prob_positive(self) -> float:
        return float(stats.norm.sf(0.0, self.mean, self.sd))

    def expected_loss(self) -> float:
        return gaussian_expected_loss(self.mean, self.sd)

    def interval(self, level: float = 0.95) -> Interval:
        tail = (1.0 - level) / 2
        low, high = stats.norm.ppf([tail, 1.0 - tail], self.mean, self.sd)
        return Interval(float(low), float(high))


def lift_posterior(estimate: LiftEstimate, prior_sd: float | None = None) -> GaussianPosterior:
    """Posterior of Δ given the estimate ~ N(Δ, se²): flat prior, or N(0, prior_sd²) (precision-weighted)."""
    se = estimate.standard_error
    if not se > 0:
        raise ValueError(f"the standard error must be positive, got {se}")
    if prior_sd is None:
        return GaussianPosterior(estimate.lift, se)
    if not prior_sd > 0:
        raise ValueError(f"prior_sd must be positive, got {prior_sd}")
    precision = 1.0 / se**2 + 1.0 / prior_sd**2
    return GaussianPosterior(estimate.lift / se**2 / precision, float(np.sqrt(1.0 / precision)))


def gaussian_expected_loss(mean: float, sd: float) -> float:
    """E[max(−Δ, 0)] for Δ ~ N(μ, σ²) = σ·φ(μ/σ) − μ·Φ(−μ/σ)."""
    if not sd > 0:
        raise ValueError(f"sd must be positive, got {sd}")
    z = mean / sd
    return float(sd * stats.norm.pdf(z) - mean * stats.norm.cdf(-z))
