"""Admin audit: any aggregate of the store as it was, and its history as event envelopes.

Read from the event log itself (queries/audit.py), so always current. Only the
caller's store's aggregates: another store's id answers exactly like an id that
does not exist (404 `aggregate.not_found`). Password and token hashes are redacted.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query

from api.auth import Principal, admin_route, require
from api.commanding import MinPosition
from api.examples import AUDIT_EVENT_EXAMPLE, AUDIT_STATE_EXAMPLE, example
from api.services import Services, services
from queries.audit import AuditEvent, AuditState
from queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page

router = APIRouter(prefix="/v1/admin/audit", tags=["admin: audit"])

AggregateId = Annotated[UUID, Path(description="Any id of the store: an order, product, cart, customer, key, …")]


@router.get(
    "/{aggregate_id}/state", summary="An aggregate as it was at a version or a moment (now, given neither)",
    response_model=AuditState, responses=example(AUDIT_STATE_EXAMPLE), **admin_route("audit:read"),
)
def state(
    aggregate_id: AggregateId, principal: Principal = Depends(require("audit:read")), svc: Services = Depends(services),
    as_of: Annotated[str | None, Query(
        min_length=1, max_length=64,
        description="ISO-8601 moment (`2026-11-01T12:00:00Z`; without an offset: UTC); its last event at or before")] = None,
    version: Annotated[int | None, Query(ge=1, le=2**53, description="Exactly this version (not with `as_of`)")] = None,
    min_position: MinPosition = None,
):
    return svc.queries.audit.store_state_at(principal.ctx, aggregate_id, version=version, as_of=as_of,
                                            min_position=min_position)


@router.get(
    "/{aggregate_id}/history", summary="An aggregate's events, oldest first, as envelopes",
    response_model=Page[AuditEvent], responses=example({"items": [AUDIT_EVENT_EXAMPLE], "next_cursor": None}),
    **admin_route("audit:read"),
)
def history(
    aggregate_id: AggregateId, principal: Principal = Depends(require("audit:read")), svc: Services = Depends(services),
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")] = None,
    min_position: MinPosition = None,
):
    return svc.queries.audit.store_history(principal.ctx, aggregate_id, limit=limit, cursor=cursor,
                                           min_position=min_position)
