"""Sample-ratio mismatch (§6): a χ² test of observed units per arm against the planned split.

A mismatch means assignment or logging is broken, so the decider holds (observation-only) rather than
trusting any effect estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

SRM_P_THRESHOLD = 0.001  # strict: the test runs at every tick, false holds are costly
SRM_MIN_UNITS = 8  # below this per arm the χ² approximation is unreliable


@dataclass(frozen=True)
class SrmResult:
    statistic: float
    p_value: float
    enough_units: bool  # every arm has ≥ min_units units
    mismatch: bool  # p < threshold and enough units: the data is untrustworthy


def sample_ratio_mismatch(
    observed: Sequence[int],
    planned_split: Sequence[float],
    threshold: float = SRM_P_THRESHOLD,
    min_units: int = SRM_MIN_UNITS,
) -> SrmResult:
    """χ² goodness of fit of `observed` counts to `planned_split` weights (normalised to sum 1)."""
    counts = np.asarray(observed, dtype=float)
    weights = np.asarray(planned_split, dtype=float)
    if counts.ndim != 1 or counts.shape != weights.shape or counts.size < 2:
        raise ValueError("observed and planned_split need the same length, at least 2 arms")
    if np.any(counts < 0) or np.any(weights <= 0):
        raise ValueError("counts must be non-negative and planned weights positive")
    total = counts.sum()
    if total == 0:
        raise ValueError("no units observed: nothing to test")
    expected = total * weights / weights.sum()
    statistic = float(((counts - expected) ** 2 / expected).sum())
    p_value = float(stats.chi2.sf(statistic, df=counts.size - 1))
    enough = bool(np.all(counts >= min_units))
    return SrmResult(statistic, p_value, enough, enough and p_value < threshold)
