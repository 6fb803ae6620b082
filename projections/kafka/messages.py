"""One event as a Kafka message, and back.

    key      the aggregate id (UTF-8): every event of an aggregate lands in one partition, in order
    value    the event envelope of ARCHITECTURE.md as compact JSON — what any consumer reads
    headers  "trafi-state": the event exactly as the event store holds it

Why the header: a Trafi consumer must hand its projection the very domain event
the log would have given it (same types: UUIDs, datetimes, Decimals, personal
data), so that a projection runs unchanged from either source. The envelope's
`data` is plain JSON and cannot say which string was a UUID; the stored state,
decoded by the application's own mapper, can. Non-Trafi consumers ignore it.

A message that cannot become a notification raises BadMessage with the reason;
the consumer parks it in the dead-letter topic (consumer.py).
"""

from __future__ import annotations

import json
from functools import lru_cache
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from domain.envelope import ENVELOPE_FIELDS, envelope_bytes

STATE_HEADER = "trafi-state"


class BadMessage(Exception):
    """A message on the events topic that is not a Trafi event: the reason says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def to_message(notification: Notification, envelope: dict) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of one stored event."""
    return (
        str(notification.originator_id).encode(),
        envelope_bytes(envelope),
        [(STATE_HEADER, notification.state)],
    )


def from_message(key: bytes | None, value: bytes | None, headers) -> Notification:
    """The stored event a message carries, or BadMessage."""
    if value is None:
        raise BadMessage("the message has no value")
    try:
        envelope = json.loads(value)
    except (ValueError, UnicodeDecodeError) as error:
        raise BadMessage(f"the value is not JSON: {error}") from None
    if not isinstance(envelope, dict):
        raise BadMessage("the value is not an event envelope (not a JSON object)")
    missing = [field for field in ENVELOPE_FIELDS if field not in envelope]
    if missing:
        raise BadMessage(f"the value is not an event envelope: no {', '.join(missing)}")
    aggregate_id = _uuid(envelope["aggregate_id"])
    version, position = envelope["version"], envelope["position"]
    if not (_positive_int(version) and _positive_int(position)):
        raise BadMessage("the envelope's version and position must be positive integers")
    event_type = envelope["type"]
    if not isinstance(event_type, str) or not _known(event_type):
        raise BadMessage(f"unknown event type {event_type!r}")
    if key is not None and key != str(aggregate_id).encode():
        # A message keyed otherwise may sit in another partition than its aggregate's
        # other events, and then nothing orders it against them.
        raise BadMessage("the message key is not the envelope's aggregate id")
    state = dict(headers or ()).get(STATE_HEADER)
    if not state:
        raise BadMessage(f"no {STATE_HEADER} header: not published by a Trafi relay")
    return Notification(
        id=position, originator_id=aggregate_id, originator_version=version, topic=event_type, state=state,
    )


def _uuid(value) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise BadMessage(f"the envelope's aggregate_id is not a UUID: {value!r}") from None


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@lru_cache(maxsize=1024)
def _known(event_type: str) -> bool:
    try:
        resolve_topic(event_type)
    except Exception:  # TopicError, or a module that no longer imports
        return False
    return True
