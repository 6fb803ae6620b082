"""Admin analytics: the funnel diagnosis and its recommendations.

GET reads the read model `diagnosis_recommendations` (latest run, findings, active
recommendations). POST …/run diagnoses the store now: it reads the DuckDB warehouse, so whoever
owns it answers, as for the other analytics routes (api/routers/analytics.py): this process in
embedded mode, else the analytics worker at TRAFI_ANALYTICS_URL, to which the request is
forwarded; without either, 503 `analytics.unavailable` with Retry-After. POST …/dismiss retires
a recommendation at the merchant's word. How a run decides: docs/diagnosis.md.
"""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.auth import Principal, admin_route, require
from api.commanding import CommandGateway, IdempotencyKey, MinPosition, answered, command_gateway, request_fingerprint
from api.examples import with_examples
from api.problems import ApiProblem
from api.routers.analytics import forward
from api.services import Services, services
from autopilot.diagnosis.engine import run_diagnosis
from commands.bus import CommandResult
from commands.diagnosis import DismissRecommendation
from queries.diagnosis import DiagnosisOverview, DiagnosisQueries

router = APIRouter(prefix="/v1/admin/analytics", tags=["admin: analytics"])
# The on-demand run reads the warehouse, so the analytics worker serves it too (api/cli_analytics.py);
# the API includes both routers.
run_router = APIRouter(prefix="/v1/admin/analytics", tags=["admin: analytics"])

RECOMMENDATION_ID = "7a0c9f3e-51d2-5b8e-9c4a-2f6e1d3b8a70"
RUN_EXAMPLE = {
    "run_id": "4be1d8f0-2c7a-5e93-8d16-0a9b3c5e7f21",
    "period": {"baseline_start": "2026-10-17", "baseline_end": "2026-11-13", "recent_start": "2026-11-14",
               "recent_end": "2026-11-20"},
    "findings": 1, "issued": [RECOMMENDATION_ID], "retired": [], "active": [RECOMMENDATION_ID],
}


class RetiredRecommendation(BaseModel):
    recommendation_id: UUID
    reason: str = Field(description="superseded | no_longer_supported | dismissed")


class RunOutcome(BaseModel):
    model_config = with_examples(RUN_EXAMPLE)
    run_id: str
    period: dict[str, str] = Field(description="The baseline and recent windows (whole UTC days, inclusive)")
    findings: int = Field(description="How many findings the run recorded (GET the diagnosis for them)")
    issued: list[UUID] = Field(description="Recommendations this run issued")
    retired: list[RetiredRecommendation] = Field(description="Recommendations this run retired, and why")
    active: list[UUID] = Field(description="The store's active recommendations after the run, best first")


class Dismissal(BaseModel):
    model_config = with_examples({"note": "we ship free already"})
    note: str | None = Field(default=None, max_length=500, description="Why, for the record")


class Dismissed(BaseModel):
    model_config = with_examples({"recommendation_id": RECOMMENDATION_ID, "status": "dismissed", "active": []})
    recommendation_id: UUID
    status: str
    active: list[UUID] = Field(description="The store's active recommendations after the dismissal")


RETRY_AFTER_S = 5
UNAVAILABLE = {503: {"description": "The analytics warehouse is not reachable from here (Retry-After)"}}


@router.get("/diagnosis", summary="The latest funnel diagnosis: its findings and the active recommendations",
            response_model=DiagnosisOverview, **admin_route("dashboard:read"))
def diagnosis(principal: Principal = Depends(require("dashboard:read")), svc: Services = Depends(services),
              min_position: MinPosition = None):
    return DiagnosisQueries(svc.views).overview(principal.ctx, min_position=min_position)


@run_router.post("/diagnosis/run", summary="Diagnose the funnel now (on demand); records the run and its recommendations",
             response_model=RunOutcome, responses=UNAVAILABLE, **admin_route("settings:write"))
async def run_now(request: Request, response: Response, principal: Principal = Depends(require("settings:write")),
                  svc: Services = Depends(services), idempotency_key: IdempotencyKey = None):
    if svc.settings.analytics_url:
        return await forward(request, svc.settings.analytics_url)
    warehouse = svc.warehouse
    if warehouse is None:
        raise ApiProblem(503, "analytics.unavailable", "analytics unavailable: this process has no warehouse and "
                         "TRAFI_ANALYTICS_URL is not set", headers={"Retry-After": str(RETRY_AFTER_S)})
    fingerprint = request_fingerprint(request, None, principal.actor) if idempotency_key else None

    def run():
        with warehouse.reading() as cur:
            return run_diagnosis(cur, svc.bus, principal.store_id, datetime.now(timezone.utc), trigger="on_demand",
                                 actor=principal.actor, idempotency_key=idempotency_key,
                                 request_fingerprint=fingerprint)

    result = await run_in_threadpool(run)
    return answered(CommandResult(position=result.position, data=result.recorded, replayed=result.replayed), response)


@router.post("/recommendations/{recommendation_id}/dismiss", summary="Dismiss a recommendation (it is not proposed "
             "again for 30 days)", response_model=Dismissed, **admin_route("settings:write"))
def dismiss(recommendation_id: UUID, body: Dismissal | None = Body(default=None),
            principal: Principal = Depends(require("settings:write")),
            gateway: CommandGateway = Depends(command_gateway)):
    command = DismissRecommendation(recommendation_id=recommendation_id, note=body.note if body else None,
                                    at=datetime.now(timezone.utc))
    return gateway.run(command, principal.ctx, payload=body).data
