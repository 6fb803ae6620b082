"""Where a flagged step's loss sits: the most specific segment that explains most of it.

Two tools:
* `most_specific` picks, among segments each carrying an excess of lost visitors, the deepest one
  (a 2-way combination before a single dimension before the whole store) that still holds at
  least `share` of the widest segment's excess *and* that the loss is confined to (`confined`:
  the rest of the widest segment did not drop comparably — a store-wide drop is not "new
  visitors'" just because they are 70 % of the store). Of two equally deep ones, the one with the
  larger relative drop: the segment a problem is confined to shows it undiluted, while a segment
  that only overlaps it mixes in unaffected visitors. Then it sets aside everything overlapping
  the choice and looks again (a second, separate problem at the same step);
* `segment_gaps` compares each segment's recent conversion with the rest of the store's
  (P(p_seg < p_rest), Bonferroni over the segments of the step) — the localisation of a step
  flagged against the reference, and the "compared with everyone else" evidence of any finding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence, TypeVar

import numpy as np

from autopilot.diagnosis import stats
from autopilot.diagnosis.counts import FunnelCounts
from autopilot.diagnosis.detect import Finding, Rate, ReferenceTest, cell_seed
from autopilot.diagnosis.segments import Segment
from autopilot.diagnosis.settings import DiagnosisSettings

T = TypeVar("T")


def most_specific(candidates: Sequence[T], *, segment: Callable[[T], Segment], excess: Callable[[T], float],
                  strength: Callable[[T], float], share: float,
                  confined: Callable[[T, T], bool] = lambda inner, outer: True) -> list[T]:
    remaining = sorted(candidates, key=lambda c: (-excess(c), segment(c)))
    chosen = []
    while remaining:
        widest = remaining[0]
        inside = [c for c in remaining if _within(segment(c), segment(widest))]
        enough = [c for c in inside if excess(c) >= share * excess(widest) and (c is widest or confined(c, widest))]
        best = max(enough, key=lambda c: (segment(c).depth, strength(c), excess(c)))
        chosen.append(best)
        remaining = [c for c in remaining if not segment(c).overlaps(segment(best))]
    return chosen


def _within(inner: Segment, outer: Segment) -> bool:
    """Every visitor of `inner` is in `outer` (inner holds all of outer's conditions)."""
    return set(outer.conditions) <= set(inner.conditions)


@dataclass(frozen=True)
class SegmentGap:
    segment: Segment
    rate: Rate
    rest: Rate
    probability: float  # P(p_segment < p_rest)
    threshold: float
    tests: int

    @property
    def excess(self) -> float:
        """Visitors of the segment who would have gone on at the rest's rate."""
        return self.rate.reached * (self.rest.posterior.mean - self.rate.posterior.mean)

    @property
    def relative_gap(self) -> float:
        return 1.0 - self.rate.posterior.mean / self.rest.posterior.mean

    def as_dict(self) -> dict:
        return {"segment": self.rate.as_dict(), "rest_of_store": self.rest.as_dict(),
                "probability": round(self.probability, 8), "threshold": round(self.threshold, 8),
                "tests": self.tests, "excess_lost_visitors": round(self.excess, 1)}


def segment_gaps(window: dict[Segment, np.ndarray], step: int, settings: DiagnosisSettings) -> list[SegmentGap]:
    """Every segment with enough visitors at `step`, against the rest of the store, in one window."""
    store = window.get(Segment())
    if store is None:
        return []
    cells = []
    for segment, reached in window.items():
        n_seg, x_seg = reached[step], reached[step + 1]
        n_rest, x_rest = store[step] - n_seg, store[step + 1] - x_seg
        if not segment.is_store and n_seg >= settings.min_trials and n_rest >= settings.min_trials:
            cells.append((segment, Rate.of(n_seg, x_seg), Rate.of(n_rest, x_rest)))
    if not cells:
        return []
    probability = stats.prob_less_screened(
        [c[1].posterior.alpha for c in cells], [c[1].posterior.beta for c in cells],
        [c[2].posterior.alpha for c in cells], [c[2].posterior.beta for c in cells],
    )
    threshold = stats.bonferroni(settings.localise_level, len(cells))
    return [SegmentGap(segment, rate, rest, float(p), threshold, len(cells))
            for (segment, rate, rest), p in zip(cells, probability)]


def flagged(gaps: list[SegmentGap]) -> list[SegmentGap]:
    return [g for g in gaps if g.probability >= g.threshold and g.excess > 0]


def explain_history(findings: list[Finding], counts: FunnelCounts, settings: DiagnosisSettings) -> list[Finding]:
    """Of the cells flagged at one step against history, the ones that explain it (most_specific)."""

    def confined(inner: Finding, outer: Finding) -> bool:
        rest = complement_drop(counts, inner.step, outer.segment, inner.segment, settings)
        return rest is None or rest <= settings.confined_ratio * inner.relative_drop.median

    return most_specific(findings, segment=lambda f: f.segment, excess=lambda f: f.excess,
                         strength=lambda f: f.relative_drop.median, share=settings.explain_share, confined=confined)


def complement_drop(counts: FunnelCounts, step: int, outer: Segment, inner: Segment,
                    settings: DiagnosisSettings) -> float | None:
    """The relative drop (recent against baseline) of `outer`'s visitors outside `inner`; None if too few."""
    rates = []
    for window in ("recent", "baseline"):
        reached = counts.reached(window, outer) - counts.reached(window, inner)
        if reached[step] < settings.min_trials:
            return None
        rates.append(Rate.of(reached[step], reached[step + 1]).posterior.mean)
    recent, baseline = rates
    return 1.0 - recent / baseline


def explain_reference(test: ReferenceTest, threshold: float, tests: int, window: dict[Segment, np.ndarray],
                      settings: DiagnosisSettings) -> list[Finding]:
    """A step whose whole-store conversion is below the reference: whose is it?

    A segment doing significantly worse than the rest of the store takes the finding when it
    holds at least `explain_share` of the store's shortfall against the reference typical
    value; otherwise the whole store is the finding.
    """
    store_rate = test.rate
    typical = test.reference.typical
    shortfall = store_rate.reached * (typical - store_rate.posterior.mean)
    store_test = {"store_reference_test": {"rate": store_rate.as_dict(), "probability_below_low": round(test.probability, 8),
                                           "threshold": round(threshold, 8), "tests": tests}}
    gaps = flagged(segment_gaps(window, test.step, settings))
    chosen = most_specific(gaps, segment=lambda g: g.segment, excess=lambda g: g.excess,
                           strength=lambda g: g.relative_gap, share=settings.explain_share)
    findings = []
    for gap in chosen:
        if gap.excess < settings.explain_share * shortfall:
            continue
        drop, diff = stats.relative_drop(gap.rate.posterior, gap.rest.posterior, draws=settings.draws,
                                         seed=cell_seed(test.step, gap.segment))
        findings.append(Finding(
            basis="reference", step=test.step, segment=gap.segment, recent=gap.rate, compared_kind="rest_of_store",
            compared_value=gap.rest.posterior.mean, compared_rate=gap.rest, probability=gap.probability,
            threshold=gap.threshold, tests=gap.tests, relative_drop=drop, gap=diff, reference=test.reference,
            evidence=store_test,
        ))
    if findings:
        return findings
    drop, diff = stats.gap_to_value(store_rate.posterior, typical, draws=settings.draws,
                                    seed=cell_seed(test.step, Segment()))
    return [Finding(
        basis="reference", step=test.step, segment=Segment(), recent=store_rate, compared_kind="reference_typical",
        compared_value=typical, compared_rate=None, probability=test.probability, threshold=threshold, tests=tests,
        relative_drop=drop, gap=diff, reference=test.reference, evidence=store_test,
    )]


def with_rest_of_store(finding: Finding, window: dict[Segment, np.ndarray], settings: DiagnosisSettings) -> Finding:
    """The finding, with its segment's recent conversion against everyone else's as extra evidence."""
    if finding.segment.is_store:
        return finding
    for gap in segment_gaps({Segment(): window[Segment()], finding.segment: window[finding.segment]},
                            finding.step, settings):
        return replace(finding, evidence={**finding.evidence, "vs_rest_of_store": gap.as_dict()})
    return finding
