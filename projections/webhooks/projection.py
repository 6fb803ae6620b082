"""OutboundWebhooks: the projection that turns the log into a delivery queue.

For every event of a subscribable aggregate (domain/webhook_topics.py) it finds the
store's active endpoints whose subscription matches and inserts one pending
delivery per endpoint — in the same transaction as its tracking position, so each
event is enqueued exactly once across crashes and restarts. Endpoints come from
the WebhookEndpoint events it reads in the same log order, so an event is matched
against the subscriptions as they were when it happened.

It works on notifications (like the audit chain) rather than decoded events: only
creation events (for the aggregate → store map), endpoint events and events that
match an endpoint are decoded. A batch costs two lookups (the stores of the
aggregates in it, then those stores' endpoints) plus its inserts.

A delivery's id is uuid5(endpoint id, event id): a primary key that makes a second
enqueue of the same event for the same endpoint a no-op, whatever happens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence
from uuid import UUID, uuid5

from domain.envelope import build_envelope, envelope_body, event_id
from domain.webhook_endpoint import WebhookEndpoint
from domain.webhook_topics import SUBSCRIBABLE_TOPICS, event_topics, matches, redact_credentials
from projections.aggregate_stores import chunks, marks, stores_of
from projections.projection import Projection
from projections.read_models.timestamps import utc_text
from projections.views import ViewTransaction
from projections.webhooks.schema import (
    AGGREGATE_STORES, CANCELLED, DELIVERIES, ENDPOINTS, FAILED, PENDING, create_projection_tables, create_queue_tables,
)

ENDPOINT_TOPICS = event_topics(WebhookEndpoint)
_ENDPOINT_TOPIC_SET = frozenset(ENDPOINT_TOPICS)


def delivery_id(endpoint_id: UUID | str, event: UUID | str) -> UUID:
    return uuid5(UUID(str(endpoint_id)), str(event))


@dataclass
class _Endpoint:
    endpoint_id: str
    store_id: str
    status: str
    event_types: tuple[str, ...]


class OutboundWebhooks(Projection):
    name = "outbound_webhooks"
    needs_log_order = True
    tables = (ENDPOINTS, AGGREGATE_STORES)

    @property
    def topics(self) -> tuple[str, ...]:
        return (*SUBSCRIBABLE_TOPICS, *ENDPOINT_TOPICS)

    def setup(self, tx: ViewTransaction) -> None:
        create_projection_tables(tx)
        create_queue_tables(tx)

    def rebuild_refusal(self, app, views) -> str | None:
        return ("a rebuild replays the whole log into the delivery queue: every past event is matched against "
                "the endpoints again, and only the queue's own rows (delivery ids are deterministic) stop it from "
                "being sent again — a queue that was pruned or lost would re-send the store's history")

    def apply(self, tx: ViewTransaction, event) -> None:
        raise TypeError("OutboundWebhooks works on notifications; it is applied through apply_batch")

    def apply_batch(self, tx: ViewTransaction, notifications: Sequence, mapper) -> None:
        if not notifications:
            return
        now = utc_text(datetime.now(timezone.utc))
        decoded: dict[int, object] = {}  # notification id → domain event, decoded at most once
        stores = self._stores(tx, notifications, mapper, decoded)
        endpoints = self._endpoints(tx, set(stores.values()))
        deliveries = []
        for notification in notifications:
            if notification.topic in _ENDPOINT_TOPIC_SET:
                _insert(tx, deliveries)  # first: a deletion must also cancel what this batch queued
                deliveries = []
                self._endpoint_event(tx, mapper.to_domain_event(notification), notification.topic, endpoints, now)
                continue
            store = stores.get(notification.originator_id)
            targets = [e for e in endpoints.get(store, {}).values()
                       if e.status == "active" and matches(e.event_types, notification.topic)]
            if targets:
                event = decoded.get(notification.id) or mapper.to_domain_event(notification)
                deliveries += _deliveries(notification, event, store, targets, now)
        _insert(tx, deliveries)

    # --- which store each event belongs to ---------------------------------------------------
    @staticmethod
    def _stores(tx, notifications, mapper, decoded: dict) -> dict[UUID, str]:
        return stores_of(tx, AGGREGATE_STORES, notifications, mapper, decoded, ignore=_ENDPOINT_TOPIC_SET)

    # --- the endpoints --------------------------------------------------------------------------
    @staticmethod
    def _endpoints(tx, stores: set[str]) -> dict[str, dict[str, _Endpoint]]:
        """store id → endpoint id → endpoint: the live endpoints of these stores, as of the start of the batch."""
        found: dict[str, dict[str, _Endpoint]] = {}
        for chunk in chunks(sorted(stores)):
            rows = tx.execute(
                f"SELECT endpoint_id, store_id, status, event_types FROM {ENDPOINTS} "
                f"WHERE store_id IN ({marks(chunk)}) AND status <> 'deleted'", chunk,
            ).fetchall()
            for endpoint_id, store_id, status, event_types in rows:
                found.setdefault(store_id, {})[endpoint_id] = _Endpoint(
                    endpoint_id, store_id, status, tuple(json.loads(event_types)))
        return found

    def _endpoint_event(self, tx, event, topic: str, endpoints: dict[str, dict[str, _Endpoint]], now: str) -> None:
        """Apply one WebhookEndpoint event to the table and to the batch's copy of the endpoints."""
        if isinstance(event, WebhookEndpoint.Created):
            self._endpoint_created(tx, event, endpoints)
        elif isinstance(event, WebhookEndpoint.DeliveryReplayed):
            self._replay(tx, str(event.originator_id), str(event.delivery_id), now)
            tx.execute(f"UPDATE {ENDPOINTS} SET version = %s WHERE endpoint_id = %s",
                       (event.originator_version, str(event.originator_id)))
        else:
            self._endpoint_changed(tx, event, topic, endpoints, now)

    @staticmethod
    def _endpoint_created(tx, event, endpoints: dict[str, dict[str, _Endpoint]]) -> None:
        endpoint_id, store_id, at = str(event.originator_id), str(event.store_id), utc_text(event.timestamp)
        types = tuple(event.event_types)
        tx.execute(
            f"INSERT INTO {ENDPOINTS} (endpoint_id, store_id, url, event_types, description, status, generation, "
            "created_at, updated_at, version) VALUES (%s, %s, %s, %s, %s, 'active', %s, %s, %s, %s) "
            "ON CONFLICT (endpoint_id) DO NOTHING",
            (endpoint_id, store_id, event.url, json.dumps(list(types)), event.description, event.generation, at, at,
             event.originator_version),
        )
        endpoints.setdefault(store_id, {})[endpoint_id] = _Endpoint(endpoint_id, store_id, "active", types)

    @staticmethod
    def _endpoint_changed(tx, event, topic: str, endpoints: dict[str, dict[str, _Endpoint]], now: str) -> None:
        endpoint_id = str(event.originator_id)
        changes = _changes_of(event, topic)
        assignments = ", ".join(f"{column} = %s" for column in changes)
        tx.execute(
            f"UPDATE {ENDPOINTS} SET {assignments}, updated_at = %s, version = %s WHERE endpoint_id = %s",
            (*changes.values(), utc_text(event.timestamp), event.originator_version, endpoint_id),
        )
        if isinstance(event, WebhookEndpoint.Deleted):
            # Nothing more goes to a deleted endpoint; what was waiting is called off (and says so).
            tx.execute(
                f"UPDATE {DELIVERIES} SET status = %s, next_attempt_at = NULL, updated_at = %s "
                "WHERE endpoint_id = %s AND status = %s", (CANCELLED, now, endpoint_id, PENDING),
            )
        known = next((found[endpoint_id] for found in endpoints.values() if endpoint_id in found), None)
        if known is not None:  # later events of this batch see the change
            known.status = str(changes.get("status", known.status))
            if "event_types" in changes:
                known.event_types = tuple(event.event_types)

    @staticmethod
    def _replay(tx, endpoint_id: str, delivery: str, now: str) -> None:
        # Only a delivery that is still failed goes back in the queue: due now, with a fresh
        # round of retries (retry_base), its attempt numbers continuing.
        tx.execute(
            f"UPDATE {DELIVERIES} SET status = %s, next_attempt_at = %s, retry_base = attempts, updated_at = %s "
            "WHERE delivery_id = %s AND endpoint_id = %s AND status = %s",
            (PENDING, now, now, delivery, endpoint_id, FAILED),
        )


_STATUS_AFTER = {WebhookEndpoint.Disabled: "disabled", WebhookEndpoint.Enabled: "active",
                 WebhookEndpoint.Deleted: "deleted"}


def _changes_of(event, topic: str) -> dict[str, object]:
    """The endpoint table's columns an event (other than Created and DeliveryReplayed) changes."""
    if isinstance(event, WebhookEndpoint.Updated):
        return {"url": event.url, "event_types": json.dumps(list(event.event_types)), "description": event.description}
    if isinstance(event, WebhookEndpoint.SecretRotated):
        return {"generation": event.generation}
    if type(event) in _STATUS_AFTER:
        return {"status": _STATUS_AFTER[type(event)]}
    raise TypeError(f"OutboundWebhooks has no handling for {topic}")


def _insert(tx, deliveries: list[tuple]) -> None:
    tx.executemany(
        f"INSERT INTO {DELIVERIES} (delivery_id, endpoint_id, store_id, event_id, event_type, position, payload, "
        "status, attempts, retry_base, next_attempt_at, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, 0, %s, %s, %s) ON CONFLICT (delivery_id) DO NOTHING",
        deliveries,
    )


def _deliveries(notification, event, store: str, targets: list[_Endpoint], now: str) -> list[tuple]:
    envelope = build_envelope(
        position=notification.id, aggregate_id=notification.originator_id, version=notification.originator_version,
        topic=notification.topic, event=event, store_id=UUID(store),
    )
    envelope["data"] = redact_credentials(envelope["data"])
    body = envelope_body(envelope)
    identifier = str(event_id(notification.originator_id, notification.originator_version))
    return [
        (str(delivery_id(target.endpoint_id, identifier)), target.endpoint_id, store, identifier, notification.topic,
         notification.id, body, PENDING, now, now, now)
        for target in targets
    ]
