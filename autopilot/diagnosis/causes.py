"""Likely causes of a finding: the reference file's causes of its step, weighted, nudged by the segment.

Each step has causes with prior weights (the source's abandonment reasons where one applies,
Trafi's assumptions otherwise — the data file says which). A segment hint multiplies a cause's
weight when the finding's segment has that dimension (a shipping-step loss confined to one
country points at that country's shipping cost). Weights are normalised to shares.
"""

from __future__ import annotations

from dataclasses import dataclass

from autopilot.diagnosis.benchmarks import Benchmarks
from autopilot.diagnosis.segments import Segment


@dataclass(frozen=True)
class RankedCause:
    cause: str
    label: str
    share: float  # of the step's causes, after segment hints; the shares sum to 1
    playbook: str | None
    weight_origin: str
    hints: tuple[str, ...]  # the segment hints that applied, as "dimension=value ×factor"

    def as_dict(self) -> dict:
        return {"cause": self.cause, "label": self.label, "share": round(self.share, 4), "playbook": self.playbook,
                "weight_origin": self.weight_origin, "hints": list(self.hints)}


def rank_causes(step: str, segment: Segment, benchmarks: Benchmarks) -> list[RankedCause]:
    weighted = []
    for rule in benchmarks.causes.get(step, ()):
        weight, applied = rule.weight, []
        for hint in benchmarks.hints:
            value = segment.value(hint.dimension)
            if hint.step == step and hint.cause == rule.cause and value is not None and hint.value in ("*", value):
                weight *= hint.factor
                applied.append(f"{hint.dimension}={value} ×{hint.factor:g}")
        weighted.append((rule, weight, tuple(applied)))
    total = sum(weight for _, weight, _ in weighted)
    ranked = [RankedCause(rule.cause, rule.label, weight / total, rule.playbook, rule.weight_origin, applied)
              for rule, weight, applied in weighted]
    return sorted(ranked, key=lambda c: (-c.share, c.cause))
