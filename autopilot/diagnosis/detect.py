"""Which funnel steps converted unusually badly lately: against the store's own history, against the reference.

History: every (step, segment) cell with enough visitors in both windows is one test of
P(p_recent < p_baseline); the threshold is Bonferroni-adjusted over all the cells tested, so a
healthy store — hundreds of cells, all noise — is rarely flagged anywhere. A flag also needs a
practically relevant drop (posterior median ≥ `min_relative_drop`).

Reference: the whole store's recent step conversion against the reference range of the data
file, flagged when P(p < low) clears a threshold Bonferroni-adjusted over the steps.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from autopilot.diagnosis import stats
from autopilot.diagnosis.benchmarks import Benchmarks, Range
from autopilot.diagnosis.counts import STEPS, FunnelCounts
from autopilot.diagnosis.segments import Segment
from autopilot.diagnosis.settings import DiagnosisSettings
from autopilot.warehouse.schema import FUNNEL_STEPS

TRANSITIONS = range(STEPS - 1)  # step k → k+1, named by the step a visitor leaves from


@dataclass(frozen=True)
class Rate:
    """Visitors who reached a step and how many of them went on, with the posterior of the conversion."""

    reached: int
    continued: int
    posterior: stats.BetaPosterior

    @classmethod
    def of(cls, reached: int, continued: int, weight: float = 1.0) -> Rate:
        return cls(int(reached), int(continued), stats.posterior(continued, reached, weight))

    @property
    def observed(self) -> float:
        return self.continued / self.reached if self.reached else 0.0

    def as_dict(self) -> dict:
        low, high = self.posterior.interval(0.95)
        return {"reached": self.reached, "continued": self.continued, "rate": round(self.observed, 4),
                "interval95": [round(low, 4), round(high, 4)]}


@dataclass(frozen=True)
class Finding:
    """A step whose conversion is unusually low for a segment, with the numbers that say so."""

    basis: str  # "history" | "reference"
    step: int  # the step visitors leave from (FUNNEL_STEPS index)
    segment: Segment
    recent: Rate
    compared_kind: str  # "baseline" | "reference_typical" | "rest_of_store"
    compared_value: float  # the conversion the recent one is measured against
    compared_rate: Rate | None  # its counts, when it is not a fixed reference value
    probability: float  # of the decisive test: P(p_recent < compared) (or P(p < reference low))
    threshold: float
    tests: int  # how many tests shared the family-wide level
    relative_drop: stats.Summary  # 1 − p_recent / compared
    gap: stats.Summary  # compared − p_recent, a rate difference
    reference: Range
    evidence: dict = field(default_factory=dict)  # further numbers: segment vs rest, the store's reference test

    @property
    def step_name(self) -> str:
        return FUNNEL_STEPS[self.step]

    @property
    def next_step(self) -> str:
        return FUNNEL_STEPS[self.step + 1]

    @property
    def excess(self) -> float:
        """Visitors of the recent window who would have gone on at the compared rate, and did not."""
        return self.recent.reached * self.gap.median

    def as_dict(self) -> dict:
        excess = {"median": round(self.recent.reached * self.gap.median, 1),
                  "low": round(max(0.0, self.recent.reached * self.gap.low), 1),
                  "high": round(self.recent.reached * self.gap.high, 1)}
        return {
            "basis": self.basis, "step": self.step_name, "next_step": self.next_step,
            "segment": self.segment.as_dict(), "segment_key": self.segment.key, "segment_label": self.segment.label,
            "recent": self.recent.as_dict(),
            "compared_with": {"kind": self.compared_kind, "rate": round(self.compared_value, 4),
                              **({"counts": self.compared_rate.as_dict()} if self.compared_rate else {})},
            "probability": round(self.probability, 8), "threshold": round(self.threshold, 8), "tests": self.tests,
            "relative_drop": self.relative_drop.as_dict(), "rate_gap": self.gap.as_dict(),
            "excess_lost_visitors": excess,
            "reference": {"low": self.reference.low, "typical": self.reference.typical, "high": self.reference.high},
            **self.evidence,
        }


def cell_seed(step: int, segment: Segment) -> int:
    """A fixed Monte Carlo seed per cell: the same counts always report the same intervals."""
    return zlib.crc32(f"{step}:{segment.key}".encode())


def dispersion_by_step(counts: FunnelCounts, baseline_only: bool) -> np.ndarray:
    """Each step's day-to-day CV² of the whole store's conversion (stats.excess_dispersion)."""
    days = counts.daily[counts.daily_in_baseline] if baseline_only else counts.daily
    return np.array([stats.excess_dispersion(days[:, k + 1], days[:, k]) if len(days) else 0.0
                     for k in TRANSITIONS])


def history_findings(counts: FunnelCounts, cv2: np.ndarray, benchmarks: Benchmarks,
                     settings: DiagnosisSettings) -> tuple[list[Finding], int, float]:
    """Cells whose recent conversion fell against their baseline: (findings, tests, threshold)."""
    cells = []
    for segment, recent in counts.recent.items():
        baseline = counts.baseline.get(segment)
        if baseline is None:
            continue
        for k in TRANSITIONS:
            if recent[k] >= settings.min_trials and baseline[k] >= settings.min_trials:
                cells.append((k, segment, recent[k], recent[k + 1], baseline[k], baseline[k + 1]))
    threshold = stats.bonferroni(settings.history_level, len(cells))
    if not cells:
        return [], 0, threshold
    recent_days = max(counts.recent_days_with_data, 1)
    baseline_days = max(counts.baseline_days_with_data, 1)
    recents, baselines = [], []
    for k, _, n_r, x_r, n_b, x_b in cells:
        typical = x_b / n_b
        recents.append(Rate.of(n_r, x_r, stats.effective_weight(typical, n_r, recent_days, cv2[k])))
        baselines.append(Rate.of(n_b, x_b, stats.effective_weight(typical, n_b, baseline_days, cv2[k])))
    probability = stats.prob_less_screened(
        [r.posterior.alpha for r in recents], [r.posterior.beta for r in recents],
        [b.posterior.alpha for b in baselines], [b.posterior.beta for b in baselines],
    )
    findings = []
    for index in np.flatnonzero(probability >= threshold):
        k, segment = cells[index][0], cells[index][1]
        recent, baseline = recents[index], baselines[index]
        drop, gap = stats.relative_drop(recent.posterior, baseline.posterior, draws=settings.draws,
                                        seed=cell_seed(k, segment))
        if drop.median < settings.min_relative_drop:
            continue
        findings.append(Finding(
            basis="history", step=k, segment=segment, recent=recent, compared_kind="baseline",
            compared_value=baseline.posterior.mean, compared_rate=baseline, probability=float(probability[index]),
            threshold=threshold, tests=len(cells), relative_drop=drop, gap=gap,
            reference=benchmarks.steps[FUNNEL_STEPS[k]],
        ))
    return findings, len(cells), threshold


@dataclass(frozen=True)
class ReferenceTest:
    step: int
    rate: Rate
    reference: Range
    probability: float  # P(p < reference low)


def reference_tests(counts: FunnelCounts, cv2: np.ndarray, benchmarks: Benchmarks,
                    settings: DiagnosisSettings) -> tuple[list[ReferenceTest], float]:
    """The whole store's recent conversion at each step against the reference low: (tests, threshold)."""
    store = counts.reached("recent", Segment())
    days = max(counts.recent_days_with_data, 1)
    tests = []
    for k in TRANSITIONS:
        if store[k] < settings.min_trials:
            continue
        reference = benchmarks.steps[FUNNEL_STEPS[k]]
        weight = stats.effective_weight(store[k + 1] / store[k], store[k], days, cv2[k])
        rate = Rate.of(store[k], store[k + 1], weight)
        tests.append(ReferenceTest(k, rate, reference, rate.posterior.prob_below(reference.low)))
    return tests, stats.bonferroni(settings.reference_level, len(tests))
