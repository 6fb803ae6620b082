"""Webhook endpoints: create, change, rotate the signing secret, disable, enable, delete.

The caller (the HTTP API) chooses the endpoint id. Results name the endpoint and its
secret generation — never the secret — which is all the API needs to derive the
secret again (domain.webhook_endpoint.derive_secret), also on an idempotent replay.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain.errors import Conflict, NotFound
from domain.store import Store
from domain.webhook_endpoint import MAX_DESCRIPTION_LENGTH, MAX_URL_LENGTH, WebhookEndpoint
from domain.webhook_topics import MAX_EVENT_TYPES

EventTypes = tuple[str, ...]


def _result(endpoint: WebhookEndpoint, **extra) -> dict:
    return {"endpoint_id": str(endpoint.id), "generation": endpoint.generation, "status": endpoint.status, **extra}


def _full(endpoint: WebhookEndpoint) -> dict:
    return _result(endpoint, url=endpoint.url, event_types=list(endpoint.event_types),
                   description=endpoint.description)


class CreateWebhookEndpoint(Command):
    endpoint_id: UUID
    url: str = Field(max_length=MAX_URL_LENGTH)
    event_types: EventTypes = Field(max_length=MAX_EVENT_TYPES)
    description: str = Field(default="", max_length=MAX_DESCRIPTION_LENGTH)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ctx.store_id, self.endpoint_id]


def create_webhook_endpoint(cmd: CreateWebhookEndpoint, uow: UnitOfWork) -> dict:
    store = uow.get(Store, uow.ctx.store_id, "store")
    if uow.exists(cmd.endpoint_id):
        raise Conflict(f"webhook endpoint {cmd.endpoint_id} already exists", code="webhook_endpoint.exists")
    endpoint = WebhookEndpoint.create(
        cmd.endpoint_id, store_id=store.id, url=cmd.url, event_types=cmd.event_types, description=cmd.description,
        created_by=uow.ctx.actor,
    )
    uow.add(endpoint)
    return _full(endpoint)


class WebhookEndpointCommand(Command):
    endpoint_id: UUID

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.endpoint_id]

    def endpoint(self, uow: UnitOfWork) -> WebhookEndpoint:
        # A deleted endpoint is gone for every purpose but the audit trail.
        endpoint = uow.find(WebhookEndpoint, self.endpoint_id)
        if endpoint is None or endpoint.deleted:
            raise NotFound("webhook_endpoint", self.endpoint_id)
        return endpoint


class UpdateWebhookEndpoint(WebhookEndpointCommand):
    url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    event_types: EventTypes | None = Field(default=None, max_length=MAX_EVENT_TYPES)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)


def update_webhook_endpoint(cmd: UpdateWebhookEndpoint, uow: UnitOfWork) -> dict:
    endpoint = cmd.endpoint(uow)
    endpoint.change(url=cmd.url, event_types=cmd.event_types, description=cmd.description, by=uow.ctx.actor)
    return _full(endpoint)


class RotateWebhookSecret(WebhookEndpointCommand):
    pass


def rotate_webhook_secret(cmd: RotateWebhookSecret, uow: UnitOfWork) -> dict:
    endpoint = cmd.endpoint(uow)
    endpoint.rotate_secret(uow.ctx.actor)
    return _result(endpoint)


class DisableWebhookEndpoint(WebhookEndpointCommand):
    pass


def disable_webhook_endpoint(cmd: DisableWebhookEndpoint, uow: UnitOfWork) -> dict:
    endpoint = cmd.endpoint(uow)
    endpoint.disable(uow.ctx.actor)
    return _result(endpoint)


class EnableWebhookEndpoint(WebhookEndpointCommand):
    pass


def enable_webhook_endpoint(cmd: EnableWebhookEndpoint, uow: UnitOfWork) -> dict:
    endpoint = cmd.endpoint(uow)
    endpoint.enable(uow.ctx.actor)
    return _result(endpoint)


class ReplayWebhookDelivery(WebhookEndpointCommand):
    delivery_id: UUID
    # The delivery's status as the delivery queue shows it, filled in by the API (the queue is
    # a projection's table, which a handler does not read): only a failed one may be replayed.
    delivery_status: str = Field(max_length=20)


def replay_webhook_delivery(cmd: ReplayWebhookDelivery, uow: UnitOfWork) -> dict:
    endpoint = cmd.endpoint(uow)
    endpoint.replay_delivery(cmd.delivery_id, status=cmd.delivery_status, by=uow.ctx.actor)
    return {"delivery_id": str(cmd.delivery_id), "endpoint_id": str(endpoint.id), "status": "pending"}


class DeleteWebhookEndpoint(WebhookEndpointCommand):
    pass


def delete_webhook_endpoint(cmd: DeleteWebhookEndpoint, uow: UnitOfWork) -> dict:
    endpoint = cmd.endpoint(uow)
    endpoint.delete(uow.ctx.actor)
    return _result(endpoint)
