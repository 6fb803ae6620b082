"""Webhooks: a store's endpoints, their deliveries and each delivery's attempts (projection `outbound_webhooks`).

Endpoints are listed whole (a store has a handful), oldest first. Deliveries come
in keyset pages, newest event first. A deleted endpoint — or another store's —
is not found, and so are its deliveries. Secrets are never here: only their generation.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from commands.context import StoreContext
from domain.errors import InvalidValue, NotFound
from projections.read_models.timestamps import from_utc_text
from projections.webhooks.schema import ATTEMPTS, DELIVERIES, DELIVERY_STATUSES, ENDPOINTS, PENDING
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel
from queries.pagination import DEFAULT_PAGE_SIZE, Page, check_limit, decode_cursor, page_of

ENDPOINT_COLUMNS = "endpoint_id, url, event_types, description, status, generation, created_at, updated_at"
DELIVERY_COLUMNS = (
    "d.delivery_id, d.endpoint_id, d.event_id, d.event_type, d.position, d.status, d.attempts, d.next_attempt_at, "
    "d.last_status_code, d.last_error, d.created_at, d.updated_at, d.delivered_at"
)


class WebhookEndpointSummary(QueryModel):
    endpoint_id: UUID
    url: str
    event_types: tuple[str, ...]
    description: str
    status: str  # active | disabled
    secret_generation: int  # rotations so far; the secret itself is shown only when created or rotated
    created_at: datetime
    updated_at: datetime


class WebhookDeliverySummary(QueryModel):
    delivery_id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    position: int
    status: str  # pending | delivered | failed | cancelled
    attempts: int
    next_attempt_at: datetime | None  # when pending
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class WebhookAttempt(QueryModel):
    attempt_no: int
    started_at: datetime
    outcome: str  # delivered | retry | failed
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None  # the response body's first 500 characters


class WebhookDeliveryDetail(WebhookDeliverySummary):
    payload: dict[str, Any]  # the event envelope, exactly what every attempt sends
    attempt_log: tuple[WebhookAttempt, ...]


def _moment(text: str | None) -> datetime | None:
    return from_utc_text(text) if text else None


def _endpoint(row: tuple) -> WebhookEndpointSummary:
    endpoint_id, url, event_types, description, status, generation, created_at, updated_at = row
    return WebhookEndpointSummary(
        endpoint_id=UUID(endpoint_id), url=url, event_types=tuple(json.loads(event_types)), description=description,
        status=status, secret_generation=generation, created_at=from_utc_text(created_at),
        updated_at=from_utc_text(updated_at),
    )


def _delivery_fields(row: tuple) -> dict:
    (delivery_id, endpoint_id, event_id, event_type, position, status, attempts, next_attempt_at, last_status_code,
     last_error, created_at, updated_at, delivered_at) = row
    return dict(
        delivery_id=UUID(delivery_id), endpoint_id=UUID(endpoint_id), event_id=UUID(event_id), event_type=event_type,
        position=position, status=status, attempts=attempts,
        next_attempt_at=_moment(next_attempt_at) if status == PENDING else None,
        last_status_code=last_status_code, last_error=last_error, created_at=from_utc_text(created_at),
        updated_at=from_utc_text(updated_at), delivered_at=_moment(delivered_at),
    )


def _attempt(row: tuple) -> WebhookAttempt:
    attempt_no, started_at, outcome, status_code, error, latency_ms, excerpt = row
    return WebhookAttempt(attempt_no=attempt_no, started_at=from_utc_text(started_at), outcome=outcome,
                          status_code=status_code, error=error, latency_ms=latency_ms, response_excerpt=excerpt)


class WebhookQueries(ReadModelQueries):
    projection_name = "outbound_webhooks"

    def list_endpoints(
        self, ctx: StoreContext, *, min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> tuple[WebhookEndpointSummary, ...]:
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(
                f"SELECT {ENDPOINT_COLUMNS} FROM {ENDPOINTS} WHERE store_id = %s AND status <> 'deleted' "
                "ORDER BY created_at, endpoint_id", (str(ctx.store_id),),
            ).fetchall()
        return tuple(_endpoint(row) for row in rows)

    def get_endpoint(
        self, ctx: StoreContext, endpoint_id: UUID, *, min_position: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> WebhookEndpointSummary:
        with self.reading(min_position, timeout_s) as tx:
            row = self._endpoint_row(tx, ctx, endpoint_id)
        return _endpoint(row)

    def list_deliveries(
        self, ctx: StoreContext, endpoint_id: UUID, *, status: str | None = None, limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None, min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Page[WebhookDeliverySummary]:
        """Newest event first; only one status when `status` is given."""
        limit = check_limit(limit)
        where, params = "d.endpoint_id = %s", [str(endpoint_id)]
        if status is not None:
            if status not in DELIVERY_STATUSES:
                raise InvalidValue("status", f"one of {', '.join(DELIVERY_STATUSES)}",
                                   code="webhook_delivery.invalid_status")
            where += " AND d.status = %s"
            params.append(status)
        if cursor is not None:
            position, after = decode_cursor(cursor, 2)
            if not position.isdigit() or len(position) > 19:
                raise InvalidValue("cursor", "not a cursor of this list", code="query.invalid_cursor")
            where += " AND (d.position < %s OR (d.position = %s AND d.delivery_id < %s))"
            params += [int(position), int(position), after]
        with self.reading(min_position, timeout_s) as tx:
            self._endpoint_row(tx, ctx, endpoint_id)
            rows = tx.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM {DELIVERIES} d WHERE {where} "
                "ORDER BY d.position DESC, d.delivery_id DESC LIMIT %s", (*params, limit + 1),
            ).fetchall()
        return page_of(rows, limit, lambda row: (str(row[4]), row[0]),
                       lambda row: WebhookDeliverySummary(**_delivery_fields(row)))

    def get_delivery(
        self, ctx: StoreContext, endpoint_id: UUID, delivery_id: UUID, *, min_position: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> WebhookDeliveryDetail:
        with self.reading(min_position, timeout_s) as tx:
            self._endpoint_row(tx, ctx, endpoint_id)
            row = tx.execute(
                f"SELECT {DELIVERY_COLUMNS}, d.payload FROM {DELIVERIES} d WHERE d.delivery_id = %s "
                "AND d.endpoint_id = %s", (str(delivery_id), str(endpoint_id)),
            ).fetchone()
            if row is None:
                raise NotFound("webhook_delivery", delivery_id)
            attempts = tx.execute(
                f"SELECT attempt_no, started_at, outcome, status_code, error, latency_ms, response_excerpt "
                f"FROM {ATTEMPTS} WHERE delivery_id = %s ORDER BY attempt_no", (str(delivery_id),),
            ).fetchall()
        return WebhookDeliveryDetail(**_delivery_fields(row[:-1]), payload=json.loads(row[-1]),
                                     attempt_log=tuple(_attempt(a) for a in attempts))

    @staticmethod
    def _endpoint_row(tx, ctx: StoreContext, endpoint_id: UUID) -> tuple:
        """The endpoint's row if it is this store's and not deleted; NotFound otherwise."""
        row = tx.execute(
            f"SELECT {ENDPOINT_COLUMNS} FROM {ENDPOINTS} WHERE endpoint_id = %s AND store_id = %s "
            "AND status <> 'deleted'", (str(endpoint_id), str(ctx.store_id)),
        ).fetchone()
        if row is None:
            raise NotFound("webhook_endpoint", endpoint_id)
        return row
