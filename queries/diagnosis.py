"""The diagnosis as the admin sees it: the latest run, its findings, the active recommendations (read model
`diagnosis_recommendations`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from commands.context import StoreContext
from domain.errors import NotFound
from projections.read_models.timestamps import from_utc_text
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel


class Recommendation(QueryModel):
    recommendation_id: UUID
    rank: int  # 1 = best expected profit impact for its risk
    key: str  # playbook:segment — what makes two recommendations "the same"
    playbook: str
    title: str
    problem: str
    step: str  # the funnel step visitors are lost at
    target_segment: dict[str, str]  # empty: the whole store
    expected_impact: dict[str, Any]  # gross_profit_per_month, orders_per_month, conversion uplift: low/typical/high
    risk: Literal["low", "medium", "high"]
    implementation: dict[str, Any]  # method: feature_flag (flag_key) | workflow | price_change
    likely_cause: dict[str, Any]
    causes: list[dict[str, Any]]
    score: float
    score_basis: str  # "gross_profit" | "orders" (no paid orders yet to value one by)
    evidence: dict[str, Any]  # the finding's numbers, period and segment, the economics used
    run_id: str
    issued_at: datetime


class DiagnosisRun(QueryModel):
    run_id: str
    trigger: str  # "schedule" | "on_demand"
    completed_at: datetime
    basis: str  # "history" | "reference_only"
    period: dict[str, str]
    steps: list[dict[str, Any]]
    tests: dict[str, Any]


class DiagnosisOverview(QueryModel):
    latest_run: DiagnosisRun | None  # None before the store's first run
    findings: list[dict[str, Any]]  # of the latest run
    recommendations: list[Recommendation]  # active ones, best first (at most 5)


class DiagnosisQueries(ReadModelQueries):
    projection_name = "diagnosis_recommendations"

    def overview(self, ctx: StoreContext, *, min_position: int | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> DiagnosisOverview:
        store = str(ctx.store_id)
        with self.reading(min_position, timeout_s) as tx:
            run = tx.execute(
                "SELECT run_id, trigger, completed_at, basis, period, steps, tests, findings FROM rm_diagnosis_runs "
                "WHERE store_id = %s AND run_id IS NOT NULL", (store,),
            ).fetchone()
            rows = tx.execute(
                "SELECT body, issued_at FROM rm_diagnosis_recommendations WHERE store_id = %s AND status = 'active' "
                "ORDER BY score DESC, key", (store,),
            ).fetchall()
        latest, findings = None, []
        if run is not None:
            run_id, trigger, completed_at, basis, period, steps, tests, findings_text = run
            latest = DiagnosisRun(run_id=run_id, trigger=trigger, completed_at=from_utc_text(completed_at),
                                  basis=basis, period=json.loads(period), steps=json.loads(steps),
                                  tests=json.loads(tests))
            findings = json.loads(findings_text)
        recommendations = []
        for rank, (body, issued_at) in enumerate(rows, start=1):
            fields = json.loads(body)
            recommendations.append(Recommendation(
                rank=rank, issued_at=from_utc_text(issued_at),
                **{name: fields[name] for name in Recommendation.model_fields if name not in ("rank", "issued_at")},
            ))
        return DiagnosisOverview(latest_run=latest, findings=findings, recommendations=recommendations)

    def recommendation(self, ctx: StoreContext, recommendation_id: UUID, *, min_position: int | None = None,
                       timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """An active recommendation's body as the diagnosis issued it (what a ChangeSet draft starts from)."""
        with self.reading(min_position, timeout_s) as tx:
            row = tx.execute(
                "SELECT body FROM rm_diagnosis_recommendations WHERE store_id = %s AND recommendation_id = %s "
                "AND status = 'active'", (str(ctx.store_id), str(recommendation_id)),
            ).fetchone()
        if row is None:
            raise NotFound("recommendation", recommendation_id)
        return json.loads(row[0])
