"""Diagnosis read model: each store's latest diagnosis run and its recommendations (active and retired).

Serves GET /v1/admin/analytics/diagnosis. The run's numbers (period, steps, findings) and each
recommendation's body (impact, implementation, evidence) are stored as JSON text, as the events
carry them: the dashboard shows them whole and nothing filters inside them.
"""

from __future__ import annotations

import json

from domain.diagnosis import StoreDiagnosis
from projections.projection import Projection, handles
from projections.read_models.timestamps import utc_text


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class DiagnosisRecommendations(Projection):
    name = "diagnosis_recommendations"
    tables = ("rm_diagnosis_runs", "rm_diagnosis_recommendations")

    def setup(self, tx) -> None:
        # One row per store: created with the store's diagnosis, overwritten by each run.
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_diagnosis_runs ("
            "diagnosis_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, run_id TEXT, trigger TEXT, completed_at TEXT, "
            "basis TEXT, period TEXT, steps TEXT, tests TEXT, findings TEXT, runs INTEGER NOT NULL)"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_diagnosis_runs_store ON rm_diagnosis_runs (store_id)")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_diagnosis_recommendations ("
            "recommendation_id TEXT PRIMARY KEY, diagnosis_id TEXT NOT NULL, store_id TEXT NOT NULL, "
            "status TEXT NOT NULL, key TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, issued_at TEXT NOT NULL, "
            "run_id TEXT NOT NULL, body TEXT NOT NULL, retired_at TEXT, retired_reason TEXT, retired_by TEXT, "
            "retired_note TEXT)"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_diagnosis_recommendations_store_status "
            "ON rm_diagnosis_recommendations (store_id, status, score)"
        )

    @handles(StoreDiagnosis.Created)
    def created(self, tx, event) -> None:
        tx.insert("rm_diagnosis_runs", {
            "diagnosis_id": str(event.originator_id), "store_id": str(event.store_id), "run_id": None,
            "trigger": None, "completed_at": None, "basis": None, "period": None, "steps": None, "tests": None,
            "findings": None, "runs": 0,
        })

    @handles(StoreDiagnosis.RunCompleted)
    def run_completed(self, tx, event) -> None:
        run = event.run
        tx.update("rm_diagnosis_runs", {"diagnosis_id": str(event.originator_id)}, set={
            "run_id": run["run_id"], "trigger": run.get("trigger"), "completed_at": utc_text(event.timestamp),
            "basis": run.get("basis"), "period": _json(run.get("period")), "steps": _json(run.get("steps", [])),
            "tests": _json(run.get("tests", {})), "findings": _json(run.get("findings", [])),
        }, add={"runs": 1})

    @handles(StoreDiagnosis.RecommendationIssued)
    def issued(self, tx, event) -> None:
        recommendation = event.recommendation
        # The store id lives on the diagnosis' row (the event names only the diagnosis).
        tx.execute(
            "INSERT INTO rm_diagnosis_recommendations (recommendation_id, diagnosis_id, store_id, status, key, score, "
            "issued_at, run_id, body) SELECT %s, diagnosis_id, store_id, 'active', %s, %s, %s, %s, %s "
            "FROM rm_diagnosis_runs WHERE diagnosis_id = %s",
            (recommendation["recommendation_id"], recommendation["key"], float(recommendation["score"]),
             utc_text(event.timestamp), recommendation["run_id"], _json(recommendation), str(event.originator_id)),
        )

    @handles(StoreDiagnosis.RecommendationRetired)
    def retired(self, tx, event) -> None:
        tx.update("rm_diagnosis_recommendations", {"recommendation_id": event.recommendation_id}, set={
            "status": "retired", "retired_at": utc_text(event.timestamp),
            "retired_reason": event.reason, "retired_by": event.by, "retired_note": event.note,
        })
