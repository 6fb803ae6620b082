"""Diagnosis: record a run (and what it recommends), dismiss a recommendation.

The statistics run outside (autopilot/diagnosis/engine.py reads the warehouse); what they
conclude enters the event store here, in one save: the run, the recommendations it retires
and the ones it issues.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field, field_validator

from commands.base import Command, aware as _aware
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain.diagnosis import StoreDiagnosis, diagnosis_id
from domain.errors import NotFound


class RecordDiagnosisRun(Command):
    run: dict
    candidates: list[dict] = Field(default_factory=list, max_length=50)
    supported: list[UUID] = Field(default_factory=list, max_length=50)  # active ones whose evidence still holds
    at: datetime

    _at_aware = field_validator("at")(_aware)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [diagnosis_id(ctx.store_id)]


def record_diagnosis_run(cmd: RecordDiagnosisRun, uow: UnitOfWork) -> dict:
    store_id = uow.ctx.store_id
    diagnosis = uow.find(StoreDiagnosis, diagnosis_id(store_id))
    if diagnosis is None:
        diagnosis = StoreDiagnosis.start(store_id)
        uow.add(diagnosis)
    changes = diagnosis.record_run(run=cmd.run, candidates=cmd.candidates, supported=[str(i) for i in cmd.supported],
                                   at=cmd.at)
    return {
        "run_id": cmd.run["run_id"],
        "period": cmd.run.get("period", {}),
        "findings": len(cmd.run.get("findings", [])),
        "issued": [r["recommendation_id"] for r in diagnosis.active_recommendations if r["run_id"] == cmd.run["run_id"]],
        "retired": [{"recommendation_id": rec_id, "reason": reason} for rec_id, reason in changes.retire],
        "active": [r["recommendation_id"] for r in diagnosis.active_recommendations],
    }


class DismissRecommendation(Command):
    recommendation_id: UUID
    note: str | None = Field(default=None, max_length=500)
    at: datetime

    _at_aware = field_validator("at")(_aware)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [diagnosis_id(ctx.store_id)]


def dismiss_recommendation(cmd: DismissRecommendation, uow: UnitOfWork) -> dict:
    diagnosis = uow.find(StoreDiagnosis, diagnosis_id(uow.ctx.store_id))
    if diagnosis is None:
        raise NotFound("recommendation", cmd.recommendation_id)
    diagnosis.dismiss(cmd.recommendation_id, by=uow.ctx.actor, note=cmd.note, at=cmd.at)
    return {"recommendation_id": str(cmd.recommendation_id), "status": "dismissed",
            "active": [r["recommendation_id"] for r in diagnosis.active_recommendations]}
