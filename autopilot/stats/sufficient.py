"""Per-arm sufficient statistics and winsorisation.

The deciders never see visitor rows: DuckDB reduces each arm to sums (n, Σy, Σy², Σx, Σx², Σxy and, for
ratio metrics, the denominator sums Σd, Σd², Σyd), and every estimate downstream is a function of those.
Here y is the metric (or a ratio metric's numerator), x the CUPED covariate (the same metric over the
14 days before first exposure) and d a ratio metric's denominator (e.g. revenue for margin rate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_CAP_PERCENTILE = 99.9  # §5: revenue and profit are capped before analysis


@dataclass(frozen=True)
class ArmStats:
    n: int
    sum_y: float
    sum_y2: float
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_xy: float = 0.0
    sum_d: float = 0.0
    sum_d2: float = 0.0
    sum_yd: float = 0.0

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be non-negative, got {self.n}")

    @classmethod
    def from_values(
        cls, y: np.ndarray, x: np.ndarray | None = None, d: np.ndarray | None = None
    ) -> ArmStats:
        """Reduce visitor-level values to sufficient statistics (missing x or d count as 0)."""
        y = np.asarray(y, dtype=float)
        x = np.zeros_like(y) if x is None else np.asarray(x, dtype=float)
        d = np.zeros_like(y) if d is None else np.asarray(d, dtype=float)
        if x.shape != y.shape or d.shape != y.shape or y.ndim != 1:
            raise ValueError("y, x and d must be one-dimensional and of equal length")
        return cls(
            n=int(y.size),
            sum_y=float(y.sum()),
            sum_y2=float(y @ y),
            sum_x=float(x.sum()),
            sum_x2=float(x @ x),
            sum_xy=float(x @ y),
            sum_d=float(d.sum()),
            sum_d2=float(d @ d),
            sum_yd=float(y @ d),
        )

    def __add__(self, other: ArmStats) -> ArmStats:
        """Sums add: the statistics of two disjoint groups of units combined."""
        return ArmStats(
            n=self.n + other.n,
            sum_y=self.sum_y + other.sum_y,
            sum_y2=self.sum_y2 + other.sum_y2,
            sum_x=self.sum_x + other.sum_x,
            sum_x2=self.sum_x2 + other.sum_x2,
            sum_xy=self.sum_xy + other.sum_xy,
            sum_d=self.sum_d + other.sum_d,
            sum_d2=self.sum_d2 + other.sum_d2,
            sum_yd=self.sum_yd + other.sum_yd,
        )

    # --- means -------------------------------------------------------------------------------------

    def _require(self, minimum: int) -> None:
        if self.n < minimum:
            raise ValueError(f"needs at least {minimum} unit(s) in the arm, got n={self.n}")

    @property
    def mean_y(self) -> float:
        self._require(1)
        return self.sum_y / self.n

    @property
    def mean_x(self) -> float:
        self._require(1)
        return self.sum_x / self.n

    @property
    def mean_d(self) -> float:
        self._require(1)
        return self.sum_d / self.n

    # --- centred sums (n−1 denominators: unbiased sample moments) ---------------------------------

    def _comoment(self, sum_a: float, sum_b: float, sum_ab: float) -> float:
        self._require(2)
        # max(…, 0) only guards the diagonal against float cancellation, see variance helpers
        return (sum_ab - sum_a * sum_b / self.n) / (self.n - 1)

    @property
    def var_y(self) -> float:
        return max(self._comoment(self.sum_y, self.sum_y, self.sum_y2), 0.0)

    @property
    def var_x(self) -> float:
        return max(self._comoment(self.sum_x, self.sum_x, self.sum_x2), 0.0)

    @property
    def var_d(self) -> float:
        return max(self._comoment(self.sum_d, self.sum_d, self.sum_d2), 0.0)

    @property
    def cov_xy(self) -> float:
        return self._comoment(self.sum_x, self.sum_y, self.sum_xy)

    @property
    def cov_yd(self) -> float:
        return self._comoment(self.sum_y, self.sum_d, self.sum_yd)

    @property
    def var_mean_y(self) -> float:
        """Variance of the arm mean ȳ."""
        return self.var_y / self.n

    # --- ratio metrics (Σy / Σd, e.g. margin rate = Σ profit / Σ revenue) --------------------------

    @property
    def ratio(self) -> float:
        if self.sum_d == 0:
            raise ValueError("ratio metric undefined: the denominator sums to 0")
        return self.sum_y / self.sum_d

    @property
    def var_ratio(self) -> float:
        """Delta-method variance of Σy/Σd: (s²_y − 2R·s_yd + R²·s²_d) / (n·d̄²).

        The visitor, not the order, is the randomisation unit, so the ratio's numerator and denominator
        are correlated per visitor; the naive per-order variance would be too small.
        """
        r = self.ratio
        spread = self.var_y - 2 * r * self.cov_yd + r * r * self.var_d
        return max(spread, 0.0) / (self.n * self.mean_d**2)


def winsorisation_cap(values: np.ndarray, percentile: float = DEFAULT_CAP_PERCENTILE) -> float:
    """The value at `percentile` (0–100) of `values`; compute it on both arms pooled so the cap is shared."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("cannot compute a winsorisation cap of no values")
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be within [0, 100], got {percentile}")
    return float(np.percentile(values, percentile))


def winsorise(
    values: np.ndarray, percentile: float = DEFAULT_CAP_PERCENTILE, cap: float | None = None
) -> np.ndarray:
    """Cap `values` from above at `cap` (default: their own `percentile`); returns a new array.

    Only the upper tail is capped: a handful of huge orders dominate the variance of revenue and
    profit, while the lower tail (refunds, loss-making orders) is bounded by prices and is real signal.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values.copy()
    limit = winsorisation_cap(values, percentile) if cap is None else cap
    return np.minimum(values, limit)
