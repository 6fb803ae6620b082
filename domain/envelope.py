"""The event envelope: how one stored event looks to the outside world.

Exports, the Kafka relay and outbound webhooks all publish events in this one
shape (ARCHITECTURE.md, "Event envelope"):

    {"event_id": "…", "position": 1234, "store_id": "…", "aggregate_type": "cart",
     "aggregate_id": "…", "version": 7, "type": "trafi.cart.item_added.v1",
     "occurred_at": "2026-11-21T08:00:00.000000Z", "data": {…}}

* `event_id` is uuid5(EVENT_ID_NAMESPACE, "<aggregate id>:<version>"). An aggregate
  version identifies an event for ever, so every copy of an event — re-published
  after a relay crash, exported twice — carries the same id, and consumers can
  de-duplicate on it without knowing the log position.
* `occurred_at` is fixed-width ISO-8601 UTC (`…T08:00:00.123456Z`): text comparison
  is chronological order, the same convention as the read models' timestamps.
* `data` holds the event's own attributes only; the library's bookkeeping
  (originator id and version, timestamp, the aggregate class topic of a creation
  event) already has its place in the envelope or is an internal detail.
  Personal data appears as its plain value: whoever receives an envelope is
  trusted with it, and after crypto-shredding the value is simply gone.

Pure functions, no I/O: the caller supplies the position and the store id.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from hashlib import sha1
from typing import Any
from uuid import UUID, uuid5

import orjson

from domain.personal import PersonalData

# Fixed for ever: changing it would change the id of every event ever published.
EVENT_ID_NAMESPACE = UUID("3c1e7d2a-9b4f-5e60-8a71-2d5c0f4b6e93")

ENVELOPE_FIELDS = (
    "event_id", "position", "store_id", "aggregate_type", "aggregate_id", "version", "type", "occurred_at", "data",
)

_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes

# Attributes every library event carries that are not part of the event's own data.
_BOOKKEEPING = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


def event_id(aggregate_id: UUID, version: int) -> UUID:
    return uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}")


def event_id_text(aggregate_id: UUID, version: int) -> str:
    """str(event_id(…)) without building a UUID object: the relay computes one per event."""
    digest = bytearray(sha1(_NAMESPACE_BYTES + f"{aggregate_id}:{version}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def aggregate_type_of(topic: str) -> str:
    """`trafi.cart.item_added.v1` → "cart"; also works on an aggregate's own topic (`trafi.stock_item.v1`).

    Topics are `trafi.<aggregate>.<event>.v<N>` (checked by tests/unit/test_topics.py),
    so the aggregate is always the second part, underscores included.
    """
    parts = topic.split(".")
    if len(parts) < 3 or parts[0] != "trafi":
        raise ValueError(f"not a Trafi topic: {topic!r}")
    return parts[1]


def utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("event timestamps must be timezone-aware")
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_PLAIN = frozenset({str, int, bool, float, type(None)})


def json_safe(value: Any) -> Any:
    """The value in plain JSON types. Unknown types raise: an export must never silently drop data."""
    kind = type(value)
    # Exact-type fast paths first: event data is mostly plain values, dicts of them and lists of
    # dicts (order lines), and the relay converts every event it publishes.
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {k if type(k) is str else str(json_safe(k)): v if type(v) in _PLAIN else json_safe(v)
                for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PLAIN else json_safe(v) for v in value]
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, PersonalData):
        return json_safe(value.value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return utc_iso(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, Decimal):
        return str(value)  # exact: never through float
    if isinstance(value, dict):
        return {str(json_safe(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if is_dataclass(value) and not isinstance(value, type):
        return json_safe(asdict(value))
    if hasattr(value, "to_dict"):
        return json_safe(value.to_dict())
    raise TypeError(f"cannot put a {type(value).__name__} into an event envelope")


def event_data(event: Any) -> dict:
    """The event's own attributes, JSON-safe."""
    return {k: v if type(v) in _PLAIN else json_safe(v) for k, v in vars(event).items() if k not in _BOOKKEEPING}


def store_id_at_creation(topic: str, event: Any) -> UUID | None:
    """The store an aggregate belongs to, read from its creation event (version 1).

    Every aggregate's creation event carries `store_id`, except a Store's own:
    a store is its own tenant. Later events do not repeat it, which is why a
    reader that wants the store of every event keeps a map from these.
    """
    store = getattr(event, "store_id", None)
    if store is None and aggregate_type_of(topic) == "store":
        store = event.originator_id
    return store


def build_envelope(
    *,
    position: int | None,
    aggregate_id: UUID,
    version: int,
    topic: str,
    event: Any,
    store_id: UUID | None,
    aggregate_type: str | None = None,
) -> dict:
    """One event as an envelope dict, in ENVELOPE_FIELDS order.

    `event` is the decoded domain event (for its timestamp and data);
    `aggregate_type` defaults to what the topic says.
    """
    return {
        "event_id": event_id_text(aggregate_id, version),
        "position": position,
        "store_id": str(store_id) if store_id is not None else None,
        "aggregate_type": aggregate_type or aggregate_type_of(topic),
        "aggregate_id": str(aggregate_id),
        "version": version,
        "type": topic,
        "occurred_at": utc_iso(event.timestamp),
        "data": event_data(event),
    }


def envelope_body(envelope: dict) -> str:
    """The exact text an envelope travels as (a webhook body, a Kafka message value):
    compact JSON in envelope field order, control characters escaped."""
    return envelope_bytes(envelope).decode()


def envelope_bytes(envelope: dict) -> bytes:
    """envelope_body as UTF-8 bytes, serialised by orjson: the relay encodes one per event,
    and the standard library's encoder was a tenth of its time."""
    return orjson.dumps(envelope)
