"""Admin webhooks: endpoints, their signing secrets, deliveries and replays (projection `outbound_webhooks`).

A signing secret is derived, never stored (domain/webhook_endpoint.derive_secret):
the response that creates an endpoint or rotates its secret derives it from the
command's result (id and generation), so an idempotent replay of that request shows
the same secret while the event log never holds one. It is shown in that response only.

Writes answer from the command's result; the endpoint list, deliveries and attempts
are read from the projection — pass a write's `X-Trafi-Position` as `min_position`
to read it back. How deliveries are made: docs/webhooks.md.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, Field

from api.auth import Principal, admin_route, require
from api.commanding import CommandGateway, MinPosition, command_gateway
from api.examples import example, with_examples
from api.services import Services, services
from commands import webhooks as commands
from domain.webhook_endpoint import MAX_DESCRIPTION_LENGTH, MAX_URL_LENGTH, derive_secret
from domain.webhook_topics import MAX_EVENT_TYPES, SUBSCRIBABLE_TOPICS, WILDCARDS
from projections.webhooks.schema import DELIVERY_STATUSES
from queries.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from queries.webhooks import WebhookDeliveryDetail, WebhookDeliverySummary, WebhookEndpointSummary, WebhookQueries

router = APIRouter(prefix="/v1/admin/webhooks", tags=["admin: webhooks"])

READ, MANAGE = "webhooks:read", "webhooks:manage"

ENDPOINT_ID = "4d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
DELIVERY_ID = "8a7b6c5d-4e3f-5a2b-9c1d-0e9f8a7b6c5d"
EVENT_ID = "6b5a4c3d-2e1f-5a0b-9c8d-7e6f5a4b3c2d"
SECRET_EXAMPLE = "whsec_" + "3f" * 32
URL_EXAMPLE = "https://erp.example.com/webhooks/trafi"
AT = "2026-11-21T10:15:00.000000Z"

ENDPOINT_EXAMPLE = {
    "endpoint_id": ENDPOINT_ID, "url": URL_EXAMPLE, "event_types": ["trafi.order.*", "trafi.stock_item.adjusted.v1"],
    "description": "ERP order sync", "status": "active", "secret_generation": 0, "created_at": AT, "updated_at": AT,
}
DELIVERY_EXAMPLE = {
    "delivery_id": DELIVERY_ID, "endpoint_id": ENDPOINT_ID, "event_id": EVENT_ID, "event_type": "trafi.order.paid.v1",
    "position": 1234, "status": "delivered", "attempts": 2, "next_attempt_at": None, "last_status_code": 200,
    "last_error": None, "created_at": AT, "updated_at": "2026-11-21T10:16:01.000000Z",
    "delivered_at": "2026-11-21T10:16:01.000000Z",
}
DELIVERY_DETAIL_EXAMPLE = {
    **DELIVERY_EXAMPLE,
    "payload": {"event_id": EVENT_ID, "position": 1234, "store_id": "1c2d3e4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f",
                "aggregate_type": "order", "aggregate_id": "7d1e2c3b-4a59-5867-9a0b-1c2d3e4f5a6b", "version": 2,
                "type": "trafi.order.paid.v1", "occurred_at": AT, "data": {"amount": 4275, "reference": "psp_8f2k"}},
    "attempt_log": [
        {"attempt_no": 1, "started_at": AT, "outcome": "retry", "status_code": 503, "error": "HTTP 503",
         "latency_ms": 87, "response_excerpt": "upstream unavailable"},
        {"attempt_no": 2, "started_at": "2026-11-21T10:16:01.000000Z", "outcome": "delivered", "status_code": 200,
         "error": None, "latency_ms": 64, "response_excerpt": "ok"},
    ],
}

EndpointId = Annotated[UUID, Path(description="The endpoint's id (`endpoint_id` from its creation or the list)")]
DeliveryId = Annotated[UUID, Path(description="The delivery's id (also sent as `Trafi-Delivery-Id`)")]
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH,
                           description="http(s) URL without credentials; private addresses are refused at delivery "
                                       "unless the deployment allows them")]
EventType = Annotated[str, Field(min_length=1, max_length=100)]
EventTypes = Annotated[list[EventType], Field(
    min_length=1, max_length=MAX_EVENT_TYPES,
    description="Topics (`trafi.order.paid.v1`) or every event of an aggregate (`trafi.order.*`); "
                "see GET /v1/admin/webhooks/event-types")]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_LENGTH, pattern=r"^[^\x00-\x1f\x7f]*$")]


def webhook_queries(svc: Services = Depends(services)) -> WebhookQueries:
    return WebhookQueries(svc.views)


def _secret(svc: Services, data: dict) -> str:
    return derive_secret(svc.settings.secret_key, UUID(data["endpoint_id"]), data["generation"])


class EventTypeList(BaseModel):
    event_types: list[str] = Field(description="Every topic an endpoint may subscribe to")
    wildcards: list[str] = Field(description="Every event of one aggregate")


class EndpointList(BaseModel):
    items: list[WebhookEndpointSummary]


class NewEndpoint(BaseModel):
    model_config = with_examples({"url": URL_EXAMPLE, "event_types": ["trafi.order.*", "trafi.stock_item.adjusted.v1"],
                                  "description": "ERP order sync"})
    url: Url
    event_types: EventTypes
    description: Description = ""


class EndpointChange(BaseModel):
    model_config = with_examples({"event_types": ["trafi.order.paid.v1", "trafi.order.cancelled.v1"]},
                                 {"url": "https://erp.example.com/webhooks/trafi-v2", "description": "ERP (new host)"})
    url: Url | None = Field(default=None, description="The new URL (unchanged if left out)")
    event_types: EventTypes | None = Field(default=None,
                                           description="The new subscription, whole (unchanged if left out)")
    description: Description | None = None


class EndpointWritten(BaseModel):
    model_config = with_examples({"endpoint_id": ENDPOINT_ID, "url": URL_EXAMPLE, "event_types": ["trafi.order.*"],
                                  "description": "ERP order sync", "generation": 0, "status": "active"})
    endpoint_id: UUID
    url: str
    event_types: list[str]
    description: str
    generation: int = Field(description="Of the signing secret")
    status: str


class EndpointCreated(EndpointWritten):
    model_config = with_examples({"endpoint_id": ENDPOINT_ID, "url": URL_EXAMPLE, "event_types": ["trafi.order.*"],
                                  "description": "ERP order sync", "generation": 0, "status": "active",
                                  "secret": SECRET_EXAMPLE})
    secret: str = Field(description="The signing secret (`whsec_…`). Shown in this response only: store it now")


class EndpointState(BaseModel):
    model_config = with_examples({"endpoint_id": ENDPOINT_ID, "generation": 0, "status": "disabled"})
    endpoint_id: UUID
    generation: int
    status: str


class SecretRotated(EndpointState):
    model_config = with_examples({"endpoint_id": ENDPOINT_ID, "generation": 1, "status": "active",
                                  "secret": SECRET_EXAMPLE})
    secret: str = Field(description="The new signing secret; the previous one stops signing at once. Shown once")


class DeliveryReplayed(BaseModel):
    model_config = with_examples({"delivery_id": DELIVERY_ID, "endpoint_id": ENDPOINT_ID, "status": "pending"})
    delivery_id: UUID
    endpoint_id: UUID
    status: str


@router.get("/event-types", summary="Which event types an endpoint may subscribe to", response_model=EventTypeList,
            **admin_route(READ))
def event_types():
    return {"event_types": list(SUBSCRIBABLE_TOPICS), "wildcards": list(WILDCARDS)}


@router.get("", summary="List the store's webhook endpoints (never their secrets)", response_model=EndpointList,
            responses=example({"items": [ENDPOINT_EXAMPLE]}), **admin_route(READ))
def list_endpoints(principal: Principal = Depends(require(READ)), queries: WebhookQueries = Depends(webhook_queries),
                   min_position: MinPosition = None):
    return {"items": queries.list_endpoints(principal.ctx, min_position=min_position)}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EndpointCreated, **admin_route(MANAGE),
             summary="Create a webhook endpoint; the response holds its signing secret, shown once")
def create_endpoint(body: NewEndpoint, principal: Principal = Depends(require(MANAGE)),
                    svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    command = commands.CreateWebhookEndpoint(endpoint_id=uuid4(), url=body.url, event_types=tuple(body.event_types),
                                             description=body.description)
    data = gateway.run(command, principal.ctx, payload=body).data
    return {**data, "secret": _secret(svc, data)}


@router.get("/{endpoint_id}", summary="One webhook endpoint (never its secret)", response_model=WebhookEndpointSummary,
            responses=example(ENDPOINT_EXAMPLE), **admin_route(READ))
def get_endpoint(endpoint_id: EndpointId, principal: Principal = Depends(require(READ)),
                 queries: WebhookQueries = Depends(webhook_queries), min_position: MinPosition = None):
    return queries.get_endpoint(principal.ctx, endpoint_id, min_position=min_position)


@router.patch("/{endpoint_id}", response_model=EndpointWritten, **admin_route(MANAGE),
              summary="Change an endpoint's URL, subscription or description (what is left out stays)")
def update_endpoint(endpoint_id: EndpointId, body: EndpointChange, principal: Principal = Depends(require(MANAGE)),
                    gateway: CommandGateway = Depends(command_gateway)):
    command = commands.UpdateWebhookEndpoint(
        endpoint_id=endpoint_id, url=body.url, description=body.description,
        event_types=tuple(body.event_types) if body.event_types is not None else None,
    )
    return gateway.run(command, principal.ctx, payload=body).data


@router.delete("/{endpoint_id}", response_model=EndpointState, **admin_route(MANAGE),
               summary="Delete an endpoint: nothing more is sent to it; what was waiting is cancelled")
def delete_endpoint(endpoint_id: EndpointId, principal: Principal = Depends(require(MANAGE)),
                    gateway: CommandGateway = Depends(command_gateway)):
    return gateway.run(commands.DeleteWebhookEndpoint(endpoint_id=endpoint_id), principal.ctx).data


@router.post("/{endpoint_id}/rotate-secret", response_model=SecretRotated, **admin_route(MANAGE),
             summary="Rotate an endpoint's signing secret: the response holds the new one, shown once")
def rotate_secret(endpoint_id: EndpointId, principal: Principal = Depends(require(MANAGE)),
                  svc: Services = Depends(services), gateway: CommandGateway = Depends(command_gateway)):
    data = gateway.run(commands.RotateWebhookSecret(endpoint_id=endpoint_id), principal.ctx).data
    return {**data, "secret": _secret(svc, data)}


@router.post("/{endpoint_id}/disable", response_model=EndpointState, **admin_route(MANAGE),
             summary="Disable an endpoint: new events are not queued for it; queued ones wait until it is enabled")
def disable_endpoint(endpoint_id: EndpointId, principal: Principal = Depends(require(MANAGE)),
                     gateway: CommandGateway = Depends(command_gateway)):
    return gateway.run(commands.DisableWebhookEndpoint(endpoint_id=endpoint_id), principal.ctx).data


@router.post("/{endpoint_id}/enable", response_model=EndpointState, **admin_route(MANAGE),
             summary="Enable a disabled endpoint again")
def enable_endpoint(endpoint_id: EndpointId, principal: Principal = Depends(require(MANAGE)),
                    gateway: CommandGateway = Depends(command_gateway)):
    return gateway.run(commands.EnableWebhookEndpoint(endpoint_id=endpoint_id), principal.ctx).data


@router.get("/{endpoint_id}/deliveries", summary="An endpoint's deliveries, newest event first",
            response_model=Page[WebhookDeliverySummary],
            responses=example({"items": [DELIVERY_EXAMPLE], "next_cursor": None}), **admin_route(READ))
def list_deliveries(
    endpoint_id: EndpointId, principal: Principal = Depends(require(READ)),
    queries: WebhookQueries = Depends(webhook_queries),
    delivery_status: Annotated[Literal[DELIVERY_STATUSES] | None, Query(
        alias="status", description="Only deliveries in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page")] = None,
    min_position: MinPosition = None,
):
    return queries.list_deliveries(principal.ctx, endpoint_id, status=delivery_status, limit=limit, cursor=cursor,
                                   min_position=min_position)


@router.get("/{endpoint_id}/deliveries/{delivery_id}", response_model=WebhookDeliveryDetail,
            summary="One delivery: the envelope it sends and every attempt", responses=example(DELIVERY_DETAIL_EXAMPLE),
            **admin_route(READ))
def get_delivery(endpoint_id: EndpointId, delivery_id: DeliveryId, principal: Principal = Depends(require(READ)),
                 queries: WebhookQueries = Depends(webhook_queries), min_position: MinPosition = None):
    return queries.get_delivery(principal.ctx, endpoint_id, delivery_id, min_position=min_position)


@router.post("/{endpoint_id}/deliveries/{delivery_id}/replay", response_model=DeliveryReplayed,
             **admin_route(MANAGE),
             summary="Send a failed delivery again (a fresh round of retries; 409 unless it failed)")
def replay_delivery(endpoint_id: EndpointId, delivery_id: DeliveryId, principal: Principal = Depends(require(MANAGE)),
                    queries: WebhookQueries = Depends(webhook_queries),
                    gateway: CommandGateway = Depends(command_gateway)):
    # The queue is the projection's: read the delivery's status there (404 if it is not this
    # endpoint's, of this store); the domain refuses anything but a failed one (409).
    delivery = queries.get_delivery(principal.ctx, endpoint_id, delivery_id)
    command = commands.ReplayWebhookDelivery(endpoint_id=endpoint_id, delivery_id=delivery_id,
                                             delivery_status=delivery.status)
    return gateway.run(command, principal.ctx).data
