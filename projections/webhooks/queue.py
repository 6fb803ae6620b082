"""The delivery queue's SQL: claim what is due, record an attempt.

Claiming is a lease, not a lock held across the request: one short transaction
picks due deliveries, counts the attempt and moves `next_attempt_at` to the end of
the lease, so no other deliverer sees them as due while they are being sent. On
PostgreSQL the pick is `FOR UPDATE SKIP LOCKED`: concurrent deliverers each take
different rows and never wait on each other. On SQLite, BEGIN IMMEDIATE makes the
claim the only writer. A deliverer that dies mid-request leaves its deliveries to
be claimed again when the lease ends: at least once.

An attempt's result only settles the delivery if the delivery is still on that
attempt (`attempts` unchanged, still pending): a result that arrives after its
lease ran out and someone else took over is logged, and changes nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.views import ViewStore
from projections.webhooks.schema import ATTEMPTS, DELIVERIES, DELIVERED, ENDPOINTS, FAILED, PENDING

_RETURNED = "delivery_id, endpoint_id, event_id, event_type, payload, attempts, retry_base"


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one attempt, with what is needed to send it."""

    delivery_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    payload: str
    attempt_no: int  # this attempt's number, from 1
    retry_base: int  # attempts made before the current round of retries
    url: str
    generation: int  # of the endpoint's signing secret, now

    @property
    def retries_so_far(self) -> int:
        """Retries of the current round already made before this attempt."""
        return self.attempt_no - self.retry_base - 1


@dataclass(frozen=True)
class AttemptRecord:
    started_at: str
    outcome: str  # delivered | retry | failed
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None


def claim_due(views: ViewStore, *, due_by: str, now: str, lease_until: str, limit: int) -> list[Claimed]:
    """Up to `limit` pending deliveries of active endpoints due by `due_by`, oldest due first."""
    if limit <= 0:
        return []
    pick = (
        f"SELECT delivery_id FROM {DELIVERIES} WHERE status = %s AND next_attempt_at <= %s "
        f"AND endpoint_id IN (SELECT endpoint_id FROM {ENDPOINTS} WHERE status = 'active') "
        "ORDER BY next_attempt_at, position LIMIT %s"
    )
    with views.transaction() as tx:
        if tx.dialect == "postgres":
            rows = tx.execute(
                f"WITH due AS MATERIALIZED ({pick} FOR UPDATE SKIP LOCKED) "
                f"UPDATE {DELIVERIES} d SET attempts = d.attempts + 1, next_attempt_at = %s, updated_at = %s "
                f"FROM due WHERE d.delivery_id = due.delivery_id RETURNING "
                + ", ".join(f"d.{column.strip()}" for column in _RETURNED.split(",")),
                (PENDING, due_by, limit, lease_until, now),
            ).fetchall()
        else:
            rows = tx.execute(
                f"UPDATE {DELIVERIES} SET attempts = attempts + 1, next_attempt_at = %s, updated_at = %s "
                f"WHERE delivery_id IN ({pick}) RETURNING {_RETURNED}",
                (lease_until, now, PENDING, due_by, limit),
            ).fetchall()
        if not rows:
            return []
        endpoint_ids = sorted({row[1] for row in rows})
        marks = ", ".join(["%s"] * len(endpoint_ids))
        targets = {
            endpoint_id: (url, generation) for endpoint_id, url, generation in tx.execute(
                f"SELECT endpoint_id, url, generation FROM {ENDPOINTS} WHERE endpoint_id IN ({marks})", endpoint_ids,
            ).fetchall()
        }
    return [
        Claimed(delivery_id, endpoint_id, event_id, event_type, payload, attempts, retry_base, *targets[endpoint_id])
        for delivery_id, endpoint_id, event_id, event_type, payload, attempts, retry_base in rows
    ]


def record_attempt(views: ViewStore, claimed: Claimed, record: AttemptRecord, *, now: str,
                   next_attempt_at: str | None) -> None:
    """Log the attempt; settle or reschedule the delivery if it is still on this attempt.

    `record.outcome`: delivered, retry (then `next_attempt_at` says when) or failed.
    """
    if record.outcome == "retry" and next_attempt_at is None:
        raise ValueError("a retry needs the moment of the next attempt")
    status, next_at, delivered_at = {
        "delivered": (DELIVERED, None, now),
        "retry": (PENDING, next_attempt_at, None),
        "failed": (FAILED, None, None),
    }[record.outcome]
    with views.transaction() as tx:
        tx.execute(
            f"INSERT INTO {ATTEMPTS} (delivery_id, attempt_no, started_at, status_code, error, latency_ms, "
            "response_excerpt, outcome) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (delivery_id, attempt_no) DO NOTHING",
            (claimed.delivery_id, claimed.attempt_no, record.started_at, record.status_code, record.error,
             record.latency_ms, record.response_excerpt, record.outcome),
        )
        tx.execute(
            f"UPDATE {DELIVERIES} SET status = %s, next_attempt_at = %s, delivered_at = %s, last_status_code = %s, "
            "last_error = %s, updated_at = %s WHERE delivery_id = %s AND attempts = %s AND status = %s",
            (status, next_at, delivered_at, record.status_code, record.error, now, claimed.delivery_id,
             claimed.attempt_no, PENDING),
        )
