"""The diagnosis' knobs, with the defaults docs/diagnosis.md explains."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiagnosisSettings:
    recent_days: int = 7  # the window that may look unusual…
    baseline_days: int = 28  # …against the days right before it
    min_baseline_days: int = 14  # fewer days with data: a new store, compared with the reference only
    history_level: float = 0.99  # family-wide: Bonferroni over every (step, segment) cell tested
    reference_level: float = 0.95  # family-wide: Bonferroni over the steps tested
    localise_level: float = 0.99  # family-wide: Bonferroni over the segments of one step
    min_relative_drop: float = 0.10  # practically relevant: the posterior median drop is at least this
    min_trials: int = 30  # a cell is tested only with this many visitors at the step in each window
    explain_share: float = 0.6  # a narrower segment wins when it holds this share of the widest one's excess…
    confined_ratio: float = 0.5  # …and the rest of the widest one dropped at most this fraction as much
    support_level: float = 0.8  # an active recommendation stays while a relevant gap is still this probable
    max_findings: int = 10
    draws: int = 4000  # Monte Carlo draws for the reported intervals (fixed seed)
    days_per_month: float = 30.4

    def __post_init__(self) -> None:
        for name in ("history_level", "reference_level", "localise_level", "support_level", "explain_share"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1)")
        if self.recent_days < 1 or self.baseline_days < 1 or self.min_trials < 1:
            raise ValueError("windows and min_trials must be positive")
