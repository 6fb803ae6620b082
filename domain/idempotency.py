"""IdempotencyRecord: remembers what a command with a given key did.

Saved in the same transaction as the command's own events, so either both
land or neither does. Its id is uuid5(store, key): two concurrent requests
with the same key collide in the event store, and the loser, on retry, finds
the record and returns the first result.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


class IdempotencyRecord(Aggregate):
    TOPIC = "trafi.idempotency_record.v1"

    @event("Created", topic="trafi.idempotency_record.recorded.v1")
    def __init__(self, id: UUID, store_id: UUID, key: str, fingerprint: str, result: dict):
        self.store_id = store_id
        self.key = key
        self.fingerprint = fingerprint
        self.result = result
