"""Operations: liveness, readiness, Prometheus metrics, and a no-op for load baselines."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict

from api.services import Services, services

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})
    status: str


class ProjectionReadiness(BaseModel):
    name: str
    state: str
    position: int
    lag_events: int
    lag_seconds: float


class Readiness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ready", "event_store": "ok", "head": 1042,
        "projections": [{"name": "order_list", "state": "running", "position": 1042, "lag_events": 0, "lag_seconds": 0.0}],
    }]})
    status: str
    event_store: str
    head: int | None
    projections: list[ProjectionReadiness]


@router.get("/healthz", summary="Liveness: the process answers", response_model=Health)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz", summary="Readiness: event store reachable, projections not too far behind",
    response_model=Readiness, responses={503: {"model": Readiness, "description": "Not ready"}},
)
def readyz(svc: Services = Depends(services)):
    try:
        head = svc.app.recorder.max_notification_id() or 0
        lag = svc.projection_lag()
    except Exception as error:  # an outage is exactly what this route reports
        body = Readiness(status="not_ready", event_store=f"unreachable: {type(error).__name__}", head=None, projections=[])
        return JSONResponse(body.model_dump(), status_code=503)
    projections = [
        ProjectionReadiness(name=s.name, state=s.state, position=s.position, lag_events=s.lag_events,
                            lag_seconds=s.lag_seconds or 0.0)
        for s in lag
    ]
    behind = [p for p in projections if p.lag_events > svc.settings.ready_max_lag or p.state == "halted"]
    body = Readiness(status="not_ready" if behind else "ready", event_store="ok", head=head, projections=projections)
    return JSONResponse(body.model_dump(), status_code=503 if behind else 200)


@router.get(
    "/metrics", summary="Prometheus metrics", response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"example": "trafi_command_retries_total 3.0\n"}},
                     "description": "Prometheus text exposition format"}},
)
def metrics(svc: Services = Depends(services)) -> Response:
    return Response(svc.metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/noop", summary="Does nothing: the baseline for load tests", response_model=Health,
            include_in_schema=True)
async def noop() -> Health:
    return Health(status="ok")
