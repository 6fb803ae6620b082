"""The outbound webhooks' tables, in the view database.

* `rm_webhook_endpoints` — every endpoint of every store, as its events left it
  (never the secret: only its generation). The admin API lists these; the
  deliverer reads an endpoint's current URL and generation at send time.
* `rm_webhook_aggregate_stores` — aggregate id → store id, from the creation event
  of every subscribable aggregate: later events do not repeat `store_id`.
* `webhook_deliveries` — one row per (endpoint, event): the envelope exactly as it
  is sent (so every attempt sends the same bytes), status, attempts, next attempt.
* `webhook_delivery_attempts` — one row per attempt: when, the answer or error,
  latency, the first 500 characters of the response.

The first two are the projection's own (`OutboundWebhooks.tables`). The last two
are deliberately not: the deliverer writes them too, and what was sent cannot be
rebuilt from events — like `api_key_usage` beside the access list.
"""

from __future__ import annotations

from projections import aggregate_stores

ENDPOINTS = "rm_webhook_endpoints"
AGGREGATE_STORES = "rm_webhook_aggregate_stores"
DELIVERIES = "webhook_deliveries"
ATTEMPTS = "webhook_delivery_attempts"

# Delivery statuses. `pending` covers "waiting for its next attempt" and "being sent".
PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"  # its endpoint was deleted before it could be delivered
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED, CANCELLED)


def create_projection_tables(tx) -> None:
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {ENDPOINTS} ("
        "endpoint_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, url TEXT NOT NULL, event_types TEXT NOT NULL, "
        "description TEXT NOT NULL, status TEXT NOT NULL, generation BIGINT NOT NULL, created_at TEXT NOT NULL, "
        "updated_at TEXT NOT NULL, version BIGINT NOT NULL)"
    )
    tx.execute(f"CREATE INDEX IF NOT EXISTS {ENDPOINTS}_store ON {ENDPOINTS} (store_id, created_at, endpoint_id)")
    aggregate_stores.create_table(tx, AGGREGATE_STORES)


def create_queue_tables(tx) -> None:
    # `retry_base`: attempts made before the current round of retries (a replay starts a new round).
    # `next_attempt_at` is NULL once a delivery is settled; while one is being sent it holds the
    # end of the sender's lease, so no other deliverer takes it meanwhile.
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {DELIVERIES} ("
        "delivery_id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL, store_id TEXT NOT NULL, event_id TEXT NOT NULL, "
        "event_type TEXT NOT NULL, position BIGINT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL, "
        "attempts INTEGER NOT NULL DEFAULT 0, retry_base INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, "
        "last_status_code INTEGER, last_error TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
        "delivered_at TEXT)"
    )
    tx.execute(f"CREATE INDEX IF NOT EXISTS {DELIVERIES}_due ON {DELIVERIES} (status, next_attempt_at)")
    tx.execute(f"CREATE INDEX IF NOT EXISTS {DELIVERIES}_endpoint ON {DELIVERIES} (endpoint_id, position, delivery_id)")
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS {ATTEMPTS} ("
        "delivery_id TEXT NOT NULL, attempt_no INTEGER NOT NULL, started_at TEXT NOT NULL, status_code INTEGER, "
        "error TEXT, latency_ms INTEGER NOT NULL, response_excerpt TEXT, outcome TEXT NOT NULL, "
        "PRIMARY KEY (delivery_id, attempt_no))"
    )
