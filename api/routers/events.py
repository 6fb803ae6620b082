"""Storefront instrumentation: POST /v1/events, and the event-flow health of a store.

Ingestion is the hottest route of the API (a storefront sends every page view), so it is lean:
the body is parsed once, each event validated by one pydantic TypeAdapter, and the accepted ones
written in one transaction off the event loop. The response says, event by event, what happened.
Schemas, limits and the stored row: autopilot/telemetry/schemas.py; storage: autopilot/telemetry/log.py.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, _bearer, admin_route, client_address, rate_limit, require
from api.problems import ApiProblem, FieldError, error_responses
from api.services import Services, services
from autopilot.telemetry import health
from autopilot.telemetry.schemas import (
    MAX_EVENTS_PER_BATCH, MAX_PROPERTIES_BYTES, BatchRefused, EventBatch, check_batch,
)
from domain import tokens

router = APIRouter(tags=["storefront: events"])


class RejectedEvent(BaseModel):
    index: int = Field(description="Position of the event in the batch, from 0")
    event_id: str | None = Field(description="The event's `event_id`, when it had a readable one")
    field: str = Field(description="Path of the offending field inside the event (the first error)")
    code: str
    reason: str
    errors: list[FieldError] = Field(description="Every error of this event")


class IngestResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "accepted": ["01JD3K7V1X0Q8Z6Y5W4V3U2T1S"], "duplicates": ["01JD3K7V1X0Q8Z6Y5W4V3U2T1T"],
        "rejected": [{"index": 2, "event_id": "01JD3K7V1X0Q8Z6Y5W4V3U2T1U", "field": "occurred_at",
                      "code": "event.too_old", "reason": "occurred_at is more than 7 days ago",
                      "errors": [{"field": "occurred_at", "code": "event.too_old",
                                  "reason": "occurred_at is more than 7 days ago"}]}],
    }]})
    accepted: list[str] = Field(description="Event ids stored now (durably, before this response)")
    duplicates: list[str] = Field(description="Event ids stored before (or repeated in this batch): not stored again")
    rejected: list[RejectedEvent] = Field(description="Invalid events, each with its reason; nothing of them is stored")


def _inline(schema: dict) -> dict:
    """The schema with its `$defs` substituted: a request body given through `openapi_extra` cannot
    point into the document's components, which FastAPI builds from route signatures alone."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items() if key != "discriminator"}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


BATCH_SCHEMA = _inline(EventBatch.model_json_schema())

INGEST_DESCRIPTION = f"""\
A batch of up to {MAX_EVENTS_PER_BATCH} storefront events (`page_view`, `product_view`, `add_to_cart`,
`checkout_start`, `checkout_step`, `checkout_complete`), each validated on its own: valid events are stored
(durably, before the response) while invalid ones are rejected with their reason. Events are de-duplicated
on `event_id` per store, so a retry of the same batch is safe. Without analytics consent
(`"consent": {{"analytics": false}}`) an event is stored without identifiers, query strings or properties.
`properties` may take {MAX_PROPERTIES_BYTES} bytes; `occurred_at` may be at most 5 minutes ahead and 7 days old.
The whole batch is refused only when the body is not JSON (400), too large (413) or not a batch (422).
The key may also come as `?key=trafi_pk_…` (publishable keys only), for `navigator.sendBeacon`, which
cannot send headers. See docs/instrumentation.md.
"""


async def event_sender(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    key: Annotated[str | None, Query(max_length=512, description="A publishable key, for `navigator.sendBeacon`, "
                                     "which cannot send an Authorization header")] = None,
) -> Principal:
    """A publishable or secret key (not an admin session), limited by TRAFI_RATE_EVENTS per key and client:
    a storefront's event traffic must not eat the shopper's budget for shopping (TRAFI_RATE_STOREFRONT)."""
    svc: Services = request.app.state.services
    token = credentials.credentials if credentials is not None else key
    if token is None:
        rate_limit(svc.limiter, f"anon:{client_address(request)}", svc.settings.anonymous_rate)
        raise ApiProblem(401, "auth.missing_credentials", "send a publishable key as `Authorization: Bearer …` "
                         "or `?key=`", field="Authorization", headers={"WWW-Authenticate": "Bearer"})
    in_url = credentials is None
    parsed = tokens.parse(token)
    if in_url and parsed is not None and parsed[0] != "pk":
        raise ApiProblem(403, "auth.wrong_key_kind", "only a publishable key may travel in the URL", field="key")
    principal = svc.auth.cached_principal(token)
    if principal is False:
        principal = await run_in_threadpool(svc.auth.principal, token)
    if principal is None:
        rate_limit(svc.limiter, f"anon:{client_address(request)}", svc.settings.anonymous_rate)
        raise ApiProblem(401, "auth.invalid_token", "the credential is unknown, expired or revoked",
                         field="key" if in_url else "Authorization", headers={"WWW-Authenticate": "Bearer"})
    if principal.kind == "admin":
        raise ApiProblem(403, "auth.wrong_key_kind", "events take a publishable or secret API key", field="Authorization")
    rate_limit(svc.limiter, f"events:{principal.subject_id}:{client_address(request)}", svc.settings.events_rate)
    request.state.store_id = str(principal.store_id)
    request.state.actor = principal.actor
    return principal


@router.post(
    "/v1/events", summary="Send storefront events (a batch; each event accepted or rejected on its own)",
    description=INGEST_DESCRIPTION, status_code=202, response_model=IngestResult,
    responses={202: {"description": "Every event is accepted, a duplicate, or rejected with its reason"},
               **error_responses(400)},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": BATCH_SCHEMA}}}},
)
async def ingest(request: Request, principal: Principal = Depends(event_sender)):
    svc: Services = request.app.state.services  # (one dependency fewer to resolve on the hottest route)
    received_at_us = time.time_ns() // 1000
    store_id = str(principal.store_id)
    body = await request.body()
    try:
        # On the event loop: validation is CPU work, and threads would only share the GIL.
        checked = check_batch(body, store_id=principal.store_id, received_at_us=received_at_us)
    except BatchRefused as refused:
        await run_in_threadpool(svc.telemetry.record_refused_batch, store_id, received_at_us)
        raise ApiProblem(refused.status, refused.code, refused.reason, field=refused.field) from None
    accepted: list[str] = []
    duplicates: list[str] = []
    if checked.rows or checked.rejected:  # the write waits for the disk: in a thread
        result = await run_in_threadpool(svc.telemetry.append, store_id, checked.rows, received_at_us,
                                         rejected=len(checked.rejected))
        accepted, duplicates = result.accepted, result.duplicates
    return JSONResponse({"accepted": accepted, "duplicates": duplicates, "rejected": checked.rejected},
                        status_code=202)


# --- event-flow health ---------------------------------------------------------------------------


class EventFlowMinute(BaseModel):
    minute: datetime = Field(description="Start of the minute (UTC)")
    accepted: int
    duplicates: int
    rejected: int
    refused_batches: int
    expected: float | None = Field(description="Accepted events the store's history expects in this minute")


class EventFlowGap(BaseModel):
    start: datetime
    end: datetime = Field(description="Exclusive")
    minutes: int
    expected_events: float = Field(description="Events the store's history expected over the gap")


class EventFlowReport(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "store_id": "1c2d3e4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f", "start": "2026-11-21T09:16:00Z", "end": "2026-11-21T10:16:00Z",
        "minutes": 60, "accepted": 5123, "duplicates": 12, "rejected": 3, "refused_batches": 0,
        "events_per_minute": 85.38, "baseline_days": 7, "last_accepted_at": "2026-11-21T10:15:59.412000Z",
        "gaps": [{"start": "2026-11-21T09:40:00Z", "end": "2026-11-21T09:43:00Z", "minutes": 3, "expected_events": 241.5}],
        "per_minute": [{"minute": "2026-11-21T09:16:00Z", "accepted": 92, "duplicates": 0, "rejected": 0,
                        "refused_batches": 0, "expected": 80.5}],
    }]})
    store_id: str
    start: datetime = Field(description="Start of the window's first minute")
    end: datetime = Field(description="End of the window (exclusive): the end of the minute in progress")
    minutes: int
    accepted: int = Field(description="Events stored in the window")
    duplicates: int = Field(description="Events sent again (same event_id) and not stored twice")
    rejected: int = Field(description="Events refused by validation (schema rejects)")
    refused_batches: int = Field(description="Requests refused as a whole: not JSON, or not a batch")
    events_per_minute: float = Field(description="Accepted events per minute over the window")
    baseline_days: int = Field(description="Days of history the expectations come from (0: no gap detection yet)")
    last_accepted_at: datetime | None
    gaps: list[EventFlowGap] = Field(description="Silent runs the store's history makes improbable (p < 0.001)")
    per_minute: list[EventFlowMinute]


def _minute(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, timezone.utc)


def _report(flow: health.EventFlow) -> EventFlowReport:
    last = flow.last_accepted_at_us
    return EventFlowReport(
        store_id=flow.store_id, start=_minute(flow.from_minute), end=_minute(flow.to_minute), minutes=flow.minutes,
        accepted=flow.accepted, duplicates=flow.duplicates, rejected=flow.rejected,
        refused_batches=flow.refused_batches, events_per_minute=round(flow.events_per_minute, 3),
        baseline_days=flow.baseline_days,
        last_accepted_at=None if last is None else datetime.fromtimestamp(last / 1e6, timezone.utc),
        gaps=[EventFlowGap(start=_minute(g.from_minute), end=_minute(g.to_minute), minutes=g.minutes,
                      expected_events=g.expected_events) for g in flow.gaps],
        per_minute=[EventFlowMinute(minute=_minute(m.minute), accepted=m.accepted, duplicates=m.duplicates,
                               rejected=m.rejected, refused_batches=m.refused_batches, expected=m.expected)
                    for m in flow.per_minute],
    )


@router.get(
    "/v1/admin/analytics/event-flow", summary="Event-flow health: events per minute, delivery gaps, duplicates, rejects",
    response_model=EventFlowReport, tags=["admin: analytics"], **admin_route("dashboard:read"),
)
def event_flow(
    principal: Principal = Depends(require("dashboard:read")), svc: Services = Depends(services),
    minutes: Annotated[int, Query(ge=1, le=1440, description="Window length, ending with the current minute")] = 60,
):
    now_us = time.time_ns() // 1000
    return _report(health.read_event_flow(svc.telemetry, str(principal.store_id), minutes=minutes, now_us=now_us))


# --- benchmark baseline (mounted only with TRAFI_BENCH_BASELINE=1) ----------------------------------

baseline_router = APIRouter()


@baseline_router.post("/bench/accept-only", include_in_schema=False)
async def accept_only(request: Request) -> Response:
    """Reads the body and answers 202: the floor under POST /v1/events in bench/ingest.py."""
    await request.body()
    return Response(b"{}", status_code=202, media_type="application/json")

