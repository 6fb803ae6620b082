"""StoreDiagnosis: one per store — its diagnosis runs, and the recommendations they led to.

A run records what the funnel said (period, every step's numbers, the findings). The same
command hands over the run's ranked recommendation candidates, and the aggregate decides
what becomes of them, by one rule (`plan`): at most `MAX_ACTIVE` recommendations are active,
the best-scored first; an active one is retired when a better one supersedes it or when the
data no longer supports it; a recommendation the merchant dismissed is not proposed again
for `DISMISS_COOLDOWN_DAYS`. Every recommendation keeps its id and the evidence it was issued
with: a ChangeSet draft starts from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidValue, NotFound

MAX_ACTIVE = 5
DISMISS_COOLDOWN_DAYS = 30
RETIRE_REASONS = ("superseded", "no_longer_supported", "dismissed")


def diagnosis_id(store_id: UUID) -> UUID:
    """One diagnosis per store: its id follows from the store's."""
    return uuid5(store_id, "diagnosis")


def recommendation_id(diagnosis: UUID, key: str, run_id: str) -> UUID:
    # Deterministic per run: recording the same run twice cannot issue twice.
    return uuid5(diagnosis, f"recommendation:{key}:{run_id}")


@dataclass(frozen=True)
class Plan:
    issue: list[dict]  # candidates to issue, best first
    retire: list[tuple[str, str]]  # (recommendation id, reason)


def plan(active: dict[str, dict], candidates: list[dict], supported: set[str], dismissed: dict[str, str],
         at: datetime, *, max_active: int = MAX_ACTIVE, cooldown_days: int = DISMISS_COOLDOWN_DAYS) -> Plan:
    """What a run changes. Pure: the aggregate applies it.

    `active`: id → recommendation; `candidates`: this run's, each with a `key` and a `score`;
    `supported`: ids of active recommendations whose evidence still holds in this run's data;
    `dismissed`: key → when the merchant last dismissed it (ISO).
    An active recommendation whose key is among the candidates is kept as it is (same id,
    first evidence) and takes the better of its two scores.
    """
    cutoff = at - timedelta(days=cooldown_days)
    best: dict[str, dict] = {}
    for candidate in candidates:
        key = candidate["key"]
        if key in dismissed and datetime.fromisoformat(dismissed[key]) > cutoff:
            continue
        if key not in best or candidate["score"] > best[key]["score"]:
            best[key] = candidate
    active_by_key = {rec["key"]: rec_id for rec_id, rec in active.items()}
    contenders = []  # (score, key, active id or None, candidate or None)
    for key, candidate in best.items():
        rec_id = active_by_key.get(key)
        score = max(candidate["score"], active[rec_id]["score"]) if rec_id else candidate["score"]
        contenders.append((score, key, rec_id, candidate))
    for rec_id, rec in active.items():
        if rec["key"] not in best and rec_id in supported:
            contenders.append((rec["score"], rec["key"], rec_id, None))
    contenders.sort(key=lambda c: (-c[0], c[1]))
    kept = contenders[:max_active]
    kept_ids = {rec_id for _, _, rec_id, _ in kept if rec_id}
    retire = []
    for rec_id, rec in active.items():
        if rec_id in kept_ids:
            continue
        still_backed = rec["key"] in best or rec_id in supported
        retire.append((rec_id, "superseded" if still_backed else "no_longer_supported"))
    issue = [candidate for _, _, rec_id, candidate in kept if rec_id is None]
    return Plan(issue=issue, retire=retire)


class StoreDiagnosis(Aggregate):
    TOPIC = "trafi.diagnosis.v1"

    @event("Created", topic="trafi.diagnosis.created.v1")
    def __init__(self, id: UUID, store_id: UUID):
        self.store_id = store_id
        self.active: dict[str, dict] = {}  # recommendation id (str) → recommendation
        self.retired: dict[str, str] = {}  # recommendation id → reason
        self.dismissed: dict[str, str] = {}  # recommendation key → when (ISO)
        self.last_run: dict | None = None

    @classmethod
    def start(cls, store_id: UUID) -> StoreDiagnosis:
        return cls(id=diagnosis_id(store_id), store_id=store_id)

    # --- runs ------------------------------------------------------------------------------
    def record_run(self, *, run: dict, candidates: list[dict], supported: list[str], at: datetime) -> Plan:
        """Record a run and bring the active recommendations in line with it; returns what changed."""
        if not run.get("run_id"):
            raise InvalidValue("run", "a run needs its run_id", code="diagnosis.invalid_run")
        for candidate in candidates:
            if not isinstance(candidate.get("key"), str) or not isinstance(candidate.get("score"), (int, float)):
                raise InvalidValue("candidates", "every candidate needs a key and a score", code="diagnosis.invalid_candidate")
        if self.last_run is not None and self.last_run["run_id"] == run["run_id"]:
            return Plan(issue=[], retire=[])  # the same run again (a retried command): nothing new
        changes = plan(self.active, candidates, set(supported), self.dismissed, at)
        self._run_completed(run=run)
        for rec_id, reason in changes.retire:
            self._recommendation_retired(recommendation_id=rec_id, reason=reason, by="autopilot", note=None,
                                         at=at.isoformat())
        for candidate in changes.issue:
            rec_id = str(recommendation_id(self.id, candidate["key"], run["run_id"]))
            self._check_room()
            self._recommendation_issued(recommendation={
                **candidate, "recommendation_id": rec_id, "run_id": run["run_id"], "issued_at": at.isoformat(),
            })
        return changes

    @event("RunCompleted", topic="trafi.diagnosis.run_completed.v1")
    def _run_completed(self, run: dict) -> None:
        self.last_run = run

    # --- recommendations -------------------------------------------------------------------
    def _check_room(self) -> None:
        if len(self.active) >= MAX_ACTIVE:
            raise Conflict(f"a store has at most {MAX_ACTIVE} active recommendations",
                           code="diagnosis.too_many_recommendations")

    @event("RecommendationIssued", topic="trafi.diagnosis.recommendation_issued.v1")
    def _recommendation_issued(self, recommendation: dict) -> None:
        self.active[recommendation["recommendation_id"]] = recommendation

    def dismiss(self, recommendation_id: UUID, *, by: str, note: str | None, at: datetime) -> None:
        """The merchant does not want this one: retired, and its key rests for the cooldown."""
        rec_id = str(recommendation_id)
        if rec_id in self.retired:
            raise Conflict(f"recommendation {rec_id} is no longer active ({self.retired[rec_id]})",
                           code="recommendation.not_active")
        if rec_id not in self.active:
            raise NotFound("recommendation", rec_id)
        self._recommendation_retired(recommendation_id=rec_id, reason="dismissed", by=by, note=note, at=at.isoformat())

    @event("RecommendationRetired", topic="trafi.diagnosis.recommendation_retired.v1")
    def _recommendation_retired(self, recommendation_id: str, reason: str, by: str, note: str | None, at: str) -> None:
        recommendation = self.active.pop(recommendation_id)
        self.retired[recommendation_id] = reason
        if reason == "dismissed":
            self.dismissed[recommendation["key"]] = at

    @property
    def active_recommendations(self) -> list[dict]:
        return sorted(self.active.values(), key=lambda r: (-r["score"], r["key"]))
