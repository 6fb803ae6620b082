"""The statistics of the diagnosis: Beta-Binomial posteriors of step conversions, and their comparisons.

A step conversion (visitors who reached step k and went on to k+1) gets a Beta(1 + x, 1 + n − x)
posterior — uniform prior, closed form. Day-to-day variation beyond the binomial (a campaign, a
weekday) is real and makes raw counts overconfident, so counts can be *deflated* to an effective
sample size before the posterior is formed (`effective_weight`). Small pure functions, vectorised
where the engine calls them for hundreds of cells at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

PRIOR = (1.0, 1.0)  # uniform: a step conversion could be anything before data
_TAIL = 1e-12  # quadrature covers the density up to these tail masses
_NODES = 401  # Simpson nodes per comparison (odd): ~1e-6 absolute even for J-shaped posteriors


@dataclass(frozen=True)
class BetaPosterior:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        tail = (1.0 - level) / 2
        low, high = stats.beta.ppf([tail, 1.0 - tail], self.alpha, self.beta)
        return float(low), float(high)

    def prob_below(self, value: float) -> float:
        """P(p < value)."""
        return float(stats.beta.cdf(value, self.alpha, self.beta))

    def draws(self, size: int, rng: np.random.Generator) -> np.ndarray:
        return rng.beta(self.alpha, self.beta, size)


def posterior(successes: float, trials: float, weight: float = 1.0) -> BetaPosterior:
    """The posterior of a conversion after `successes` of `trials`, counts scaled by `weight` (≤ 1)."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"weight must be in (0, 1], got {weight}")
    return BetaPosterior(PRIOR[0] + successes * weight, PRIOR[1] + (trials - successes) * weight)


def prob_less(a: BetaPosterior, b: BetaPosterior) -> float:
    """P(p_a < p_b) for independent Beta posteriors."""
    return float(prob_less_many(np.array([a.alpha]), np.array([a.beta]), np.array([b.alpha]), np.array([b.beta]))[0])


def prob_less_many(alpha_a, beta_a, alpha_b, beta_b) -> np.ndarray:
    """P(p_a < p_b) for many pairs of Beta posteriors at once, accurate far into the tails.

    Decisions here sit at probabilities like 1 − 10⁻⁵ (a Bonferroni threshold), which
    Monte Carlo cannot resolve. So the complement is integrated numerically over the
    *narrower* posterior's support, where the other one's CDF is smooth:
    1 − P(a < b) = ∫ f_b(t) S_a(t) dt   or, swapping roles,   = ∫ f_a(t) F_b(t) dt.
    """
    alpha_a, beta_a, alpha_b, beta_b = (np.asarray(v, dtype=float) for v in (alpha_a, beta_a, alpha_b, beta_b))
    if alpha_a.size == 0:
        return np.zeros(0)
    over_b = _sd(alpha_b, beta_b) <= _sd(alpha_a, beta_a)  # integrate over b's density when b is narrower
    dens_alpha = np.where(over_b, alpha_b, alpha_a)[:, None]
    dens_beta = np.where(over_b, beta_b, beta_a)[:, None]
    low = special.betaincinv(dens_alpha, dens_beta, _TAIL)
    high = special.betainccinv(dens_alpha, dens_beta, _TAIL)
    grid = low + (high - low) * np.linspace(0.0, 1.0, _NODES)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_density = ((dens_alpha - 1) * np.log(grid) + (dens_beta - 1) * np.log1p(-grid)
                       - special.betaln(dens_alpha, dens_beta))
    density = np.nan_to_num(np.exp(log_density), nan=0.0, posinf=0.0)
    # over b: the mass where a is above t (S_a); over a: the mass where b is below t (F_b).
    other = np.where(
        over_b[:, None],
        special.betaincc(alpha_a[:, None], beta_a[:, None], grid),
        special.betainc(alpha_b[:, None], beta_b[:, None], grid),
    )
    complement = _simpson(density * other, (high - low)[:, 0] / (_NODES - 1))
    return np.clip(1.0 - complement, 0.0, 1.0)


def prob_less_screened(alpha_a, beta_a, alpha_b, beta_b, screen: float = 0.9) -> np.ndarray:
    """`prob_less_many` where it matters, a normal approximation elsewhere.

    The exact integral costs about a millisecond per pair; hundreds of cells are compared per
    run and nearly all of them are nowhere near a threshold (every threshold is ≥ `screen`).
    Pairs whose normal approximation reaches `screen` get the exact value.
    """
    alpha_a, beta_a, alpha_b, beta_b = (np.asarray(v, dtype=float) for v in (alpha_a, beta_a, alpha_b, beta_b))
    mean_a, mean_b = alpha_a / (alpha_a + beta_a), alpha_b / (alpha_b + beta_b)
    approx = special.ndtr((mean_b - mean_a) / np.hypot(_sd(alpha_a, beta_a), _sd(alpha_b, beta_b)))
    close = approx >= screen
    result = approx.copy()
    result[close] = prob_less_many(alpha_a[close], beta_a[close], alpha_b[close], beta_b[close])
    return result


def _sd(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    total = alpha + beta
    return np.sqrt(alpha * beta / (total**2 * (total + 1.0)))


def _simpson(values: np.ndarray, step: np.ndarray) -> np.ndarray:
    weights = np.ones(values.shape[1])
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return (values * weights).sum(axis=1) * step / 3.0


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float

    def as_dict(self, digits: int = 4) -> dict:
        return {"median": round(self.median, digits), "low": round(self.low, digits), "high": round(self.high, digits)}


def summarise(draws: np.ndarray, level: float = 0.95) -> Summary:
    tail = (1.0 - level) / 2
    low, median, high = np.quantile(draws, [tail, 0.5, 1.0 - tail])
    return Summary(float(median), float(low), float(high))


def relative_drop(recent: BetaPosterior, reference: BetaPosterior, *, draws: int = 4000, seed: int = 0,
                  level: float = 0.95) -> tuple[Summary, Summary]:
    """The posterior of 1 − p_recent / p_reference and of p_reference − p_recent (median, credible interval).

    Monte Carlo with a fixed seed: the same counts always give the same report.
    """
    rng = np.random.default_rng(seed)
    p_recent, p_reference = recent.draws(draws, rng), reference.draws(draws, rng)
    return summarise(1.0 - p_recent / p_reference, level), summarise(p_reference - p_recent, level)


def gap_to_value(recent: BetaPosterior, value: float, *, draws: int = 4000, seed: int = 0,
                 level: float = 0.95) -> tuple[Summary, Summary]:
    """As `relative_drop`, against a fixed rate (a reference value) instead of a posterior."""
    rng = np.random.default_rng(seed)
    p_recent = recent.draws(draws, rng)
    return summarise(1.0 - p_recent / value, level), summarise(value - p_recent, level)


def bonferroni(level: float, tests: int) -> float:
    """The per-test probability threshold that keeps a family of `tests` at `level`."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return 1.0 - (1.0 - level) / max(tests, 1)


def excess_dispersion(successes: np.ndarray, trials: np.ndarray) -> float:
    """Day-to-day variance of a rate beyond the binomial, relative to the rate squared (a CV²).

    Method of moments over days: observed variance of the daily rates minus the mean
    binomial variance, floored at 0. Returns 0 with fewer than 3 usable days.
    """
    successes, trials = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    used = trials > 0
    if used.sum() < 3 or successes[used].sum() == 0:
        return 0.0
    x, n = successes[used], trials[used]
    pooled = x.sum() / n.sum()
    rates = x / n
    binomial = np.mean(pooled * (1.0 - pooled) / n)
    excess = max(0.0, float(np.var(rates, ddof=1)) - binomial)
    return excess / pooled**2


def effective_weight(rate: float, trials: float, days: int, cv2: float) -> float:
    """How much each visitor counts once day-to-day variation is allowed for (1 = plain binomial).

    A window's rate has variance p(1−p)/N + τ²/D (τ² = cv2·p², D days), so it carries as much
    information as n_eff = p(1−p) / that variance visitors; the weight is n_eff / N.
    """
    if trials <= 0 or cv2 <= 0 or days <= 0 or not 0.0 < rate < 1.0:
        return 1.0
    return 1.0 / (1.0 + trials * cv2 * rate**2 / (days * rate * (1.0 - rate)))
