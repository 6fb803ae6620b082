"""One diagnosis run: read the warehouse, decide, record the outcome as events.

`diagnose()` is the decision — warehouse in, findings and recommendation candidates out, no
event store — so it can be run over many simulated stores in seconds. `run_diagnosis()` adds
the recording: one command (`RecordDiagnosisRun`) that stores the run and lets the store's
`StoreDiagnosis` aggregate issue and retire recommendations. `diagnose_all_stores()` is the
daily job of the analytics worker.

Days: a run at `now` looks at whole UTC days up to yesterday (today is not over yet): the
recent window is the last `recent_days` of them, the baseline the `baseline_days` before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid5

import numpy as np

from autopilot.diagnosis import benchmarks as benchmark_file
from autopilot.diagnosis.benchmarks import Benchmarks
from autopilot.diagnosis.causes import rank_causes
from autopilot.diagnosis.counts import (
    Economics, FunnelCounts, Period, read_counts, read_economics, stores_with_data,
)
from autopilot.diagnosis.detect import (
    TRANSITIONS, Finding, Rate, dispersion_by_step, history_findings, reference_tests,
)
from autopilot.diagnosis.localise import explain_history, explain_reference, with_rest_of_store
from autopilot.diagnosis.recommend import candidate
from autopilot.diagnosis.segments import Segment
from autopilot.diagnosis.settings import DiagnosisSettings
from autopilot.warehouse.schema import FUNNEL_STEPS
from commands.context import StoreContext
from commands.diagnosis import RecordDiagnosisRun
from domain.diagnosis import StoreDiagnosis, diagnosis_id

log = logging.getLogger("trafi.autopilot.diagnosis")

TRIGGERS = ("schedule", "on_demand")
DEFAULT_SETTINGS = DiagnosisSettings()


@dataclass(frozen=True)
class Diagnosis:
    """What one store's funnel says at one moment (nothing recorded yet)."""

    store_id: str
    at: datetime
    period: Period
    basis: str  # "history" (baseline and reference) | "reference_only" (too little history)
    steps: list[dict]
    findings: list[Finding]
    candidates: list[dict]
    tests: dict
    economics: Economics
    counts: FunnelCounts = field(repr=False)
    benchmarks: Benchmarks = field(repr=False)

    def finding_records(self) -> list[dict]:
        """The findings as recorded: their numbers, and their likely causes ranked."""
        return [plain({**f.as_dict(), "causes": [c.as_dict() for c in rank_causes(f.step_name, f.segment,
                                                                                   self.benchmarks)]})
                for f in self.findings]

    def run_record(self, run_id: str, trigger: str) -> dict:
        return plain({
            "run_id": run_id, "trigger": trigger, "at": self.at.isoformat(), "period": self.period.as_dict(),
            "basis": self.basis, "steps": self.steps, "tests": self.tests, "findings": self.finding_records(),
            "economics": {"paid_orders": self.economics.orders, "currency": self.economics.currency},
        })


@dataclass(frozen=True)
class DiagnosisResult:
    store_id: str
    run_id: str
    period: dict
    findings: list[dict]
    issued: list[str]  # recommendation ids issued by this run
    retired: list[dict]  # {recommendation_id, reason}
    active: list[str]  # the store's active recommendations after the run, best first
    position: int | None  # of the run's last event (read-your-writes)
    replayed: bool = False  # an idempotency key returned an earlier run's outcome (`findings` are this look's)
    recorded: dict = field(default_factory=dict)  # what the command returned: run_id, period, findings (a count), …

    def as_dict(self) -> dict:
        return {"store_id": self.store_id, "run_id": self.run_id, "period": self.period, "findings": self.findings,
                "issued": self.issued, "retired": self.retired, "active": self.active, "position": self.position}


def last_complete_day(now: datetime):
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    return now.astimezone(timezone.utc).date() - timedelta(days=1)


def diagnose(con, store_id: str | UUID, now: datetime, *, settings: DiagnosisSettings = DEFAULT_SETTINGS,
             benchmarks: Benchmarks | None = None) -> Diagnosis:
    benchmarks = benchmarks or benchmark_file.load()
    store_id = str(store_id)
    period = Period.ending(last_complete_day(now), settings.recent_days, settings.baseline_days)
    counts = read_counts(con, store_id, period)
    economics = read_economics(con, store_id, period.baseline_start, period.recent_end)
    has_history = counts.baseline_days_with_data >= settings.min_baseline_days
    cv2 = dispersion_by_step(counts, baseline_only=has_history)

    by_step: dict[int, list[Finding]] = {}
    tests: dict[str, Any] = {}
    if has_history:
        flagged, cells, threshold = history_findings(counts, cv2, benchmarks, settings)
        tests["history"] = {"cells": cells, "threshold": threshold, "family_level": settings.history_level}
        for k in TRANSITIONS:
            at_step = [f for f in flagged if f.step == k]
            if at_step:
                explained = explain_history(at_step, counts, settings)
                by_step[k] = [with_rest_of_store(f, counts.recent, settings) for f in explained]
    ref_tests, ref_threshold = reference_tests(counts, cv2, benchmarks, settings)
    tests["reference"] = {"steps": len(ref_tests), "threshold": ref_threshold, "family_level": settings.reference_level}
    for test in ref_tests:
        # A step already explained against its own history keeps that (more specific) finding.
        if test.probability >= ref_threshold and test.step not in by_step:
            by_step[test.step] = explain_reference(test, ref_threshold, len(ref_tests), counts.recent, settings)

    findings = sorted((f for fs in by_step.values() for f in fs), key=lambda f: -f.excess)[:settings.max_findings]
    candidates = [c for f in findings if (c := candidate(f, counts=counts, economics=economics, period=period,
                                                          benchmarks=benchmarks, settings=settings))]
    candidates.sort(key=lambda c: (-c["score"], c["key"]))
    return Diagnosis(
        store_id=store_id, at=now, period=period, basis="history" if has_history else "reference_only",
        steps=step_table(counts, benchmarks, {t.step: t.probability for t in ref_tests}),
        findings=findings, candidates=[plain(c) for c in candidates], tests=plain(tests), economics=economics,
        counts=counts, benchmarks=benchmarks,
    )


def step_table(counts: FunnelCounts, benchmarks: Benchmarks, below_low: dict[int, float]) -> list[dict]:
    """Every step's whole-store numbers: what the run looked at, flagged or not."""
    store = Segment()
    rows = []
    for k in TRANSITIONS:
        recent, baseline = counts.reached("recent", store), counts.reached("baseline", store)
        reference = benchmarks.steps[FUNNEL_STEPS[k]]
        rows.append({
            "step": FUNNEL_STEPS[k], "next_step": FUNNEL_STEPS[k + 1],
            "recent": Rate.of(recent[k], recent[k + 1]).as_dict(),
            "baseline": Rate.of(baseline[k], baseline[k + 1]).as_dict() if baseline[k] else None,
            "reference": {"low": reference.low, "typical": reference.typical, "high": reference.high,
                          "probability_below_low": round(below_low[k], 6) if k in below_low else None},
        })
    return rows


def still_supported(counts: FunnelCounts, active: list[dict], settings: DiagnosisSettings) -> list[str]:
    """Active recommendations whose gap still shows in the recent window (or cannot be judged yet).

    A lasting problem stops looking unusual against a baseline that has come to include it;
    the recommendation must not lapse for that. It lapses when its own segment's recent
    conversion is no longer probably (`support_level`) below the rate its evidence compared it
    with, less the practically relevant drop — a recovered segment only rarely looks that bad.
    """
    supported = []
    for recommendation in active:
        finding = recommendation["evidence"]["finding"]
        step = FUNNEL_STEPS.index(finding["step"])
        reached = counts.reached("recent", Segment.from_dict(finding["segment"]))
        if reached[step] < settings.min_trials:
            supported.append(recommendation["recommendation_id"])
            continue
        now = Rate.of(reached[step], reached[step + 1])
        still_low = finding["compared_with"]["rate"] * (1.0 - settings.min_relative_drop)
        if now.posterior.prob_below(still_low) >= settings.support_level:
            supported.append(recommendation["recommendation_id"])
    return supported


def run_id_for(store_id: str, now: datetime) -> str:
    return str(uuid5(UUID(store_id), f"diagnosis-run:{now.astimezone(timezone.utc).isoformat()}"))


def run_diagnosis(warehouse_con, bus, store_id: str | UUID, now: datetime, *, trigger: str = "schedule",
                  actor: str = "autopilot", settings: DiagnosisSettings = DEFAULT_SETTINGS,
                  benchmarks: Benchmarks | None = None, idempotency_key: str | None = None,
                  request_fingerprint: str | None = None) -> DiagnosisResult:
    """Diagnose one store and record the run and its recommendations (one command, one save)."""
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}")
    store_id = str(UUID(str(store_id)))
    diagnosis = diagnose(warehouse_con, store_id, now, settings=settings, benchmarks=benchmarks)
    run_id = run_id_for(store_id, now)
    supported = still_supported(diagnosis.counts, active_recommendations(bus.app, UUID(store_id)), settings)
    command = RecordDiagnosisRun(run=diagnosis.run_record(run_id, trigger), candidates=diagnosis.candidates,
                                 supported=[UUID(i) for i in supported], at=now)
    result = bus.execute(command, StoreContext(UUID(store_id), actor=actor), idempotency_key=idempotency_key,
                         request_fingerprint=request_fingerprint)
    return DiagnosisResult(
        store_id=store_id, run_id=result.data["run_id"], period=result.data["period"],
        findings=diagnosis.finding_records(), issued=result.data["issued"],
        retired=result.data["retired"], active=result.data["active"], position=result.position,
        replayed=result.replayed, recorded=result.data,
    )


def active_recommendations(app, store_id: UUID) -> list[dict]:
    found, _ = app.load_many([diagnosis_id(store_id)])
    diagnosis = found.get(diagnosis_id(store_id))
    if not isinstance(diagnosis, StoreDiagnosis) or diagnosis.store_id != store_id:
        return []
    return diagnosis.active_recommendations


def diagnose_all_stores(warehouse_con, bus, now: datetime, *, settings: DiagnosisSettings = DEFAULT_SETTINGS,
                        benchmarks: Benchmarks | None = None) -> list[DiagnosisResult]:
    """The daily job: every store with visitors in the analysed period, one after the other.

    A store that fails is logged and skipped: one store's bad data must not cost the others
    their diagnosis.
    """
    period = Period.ending(last_complete_day(now), settings.recent_days, settings.baseline_days)
    results = []
    for store_id in stores_with_data(warehouse_con, period.baseline_start, period.recent_end):
        try:
            results.append(run_diagnosis(warehouse_con, bus, store_id, now, settings=settings, benchmarks=benchmarks))
        except Exception:
            log.exception("diagnosis of store %s failed", store_id)
    return results


def plain(value):
    """JSON-ready: numpy scalars and arrays become Python numbers and lists (events are JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
