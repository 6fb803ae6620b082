"""Which events a webhook endpoint may subscribe to, and how a subscription matches a topic.

A subscription is a list of event types, each an exact topic
(`trafi.order.paid.v1`) or every event of one aggregate (`trafi.order.*`).
Only commerce aggregates can be subscribed. API keys, admin users, sessions,
password resets and idempotency records are left out on purpose: their events
carry credential hashes and say who can act on the store — nothing an
integration needs, and nothing that should leave the system.

Credential hashes inside commerce events (a customer's password hash, an order's
buyer-token hash) are replaced by "[redacted]" before an envelope leaves, as the
audit API does (queries/audit.py): a password hash is worth an offline attack.
"""

from __future__ import annotations

from typing import Any, Iterable

from eventsourcing.domain import CanMutateAggregate

from domain.cart import Cart
from domain.changeset import ChangeSet
from domain.customer import Customer
from domain.errors import InvalidValue
from domain.order import Order
from domain.product import Product
from domain.stock import StockItem
from domain.store import Store

# aggregate type (the topic's second part) → aggregate class
SUBSCRIBABLE = {cls.TOPIC.split(".")[1]: cls for cls in (Order, StockItem, Product, Cart, Customer, Store,
                                                                   ChangeSet)}  # the merchant hears of an automatic rollback
MAX_EVENT_TYPES = 100

REDACTED = "[redacted]"
CREDENTIAL_FIELDS = frozenset({"password_hash", "secret_hash", "previous_hash", "token_hash"})


def event_topics(aggregate: type) -> tuple[str, ...]:
    """The topics of an aggregate's own event classes, in declaration order."""
    return tuple(
        obj.TOPIC for name, obj in vars(aggregate).items()
        if isinstance(obj, type) and issubclass(obj, CanMutateAggregate) and name != "Event"
    )


SUBSCRIBABLE_TOPICS: tuple[str, ...] = tuple(t for cls in SUBSCRIBABLE.values() for t in event_topics(cls))
_KNOWN = frozenset(SUBSCRIBABLE_TOPICS)
WILDCARDS: tuple[str, ...] = tuple(f"trafi.{kind}.*" for kind in SUBSCRIBABLE)


def check_event_types(event_types: Iterable[str], field: str = "event_types") -> tuple[str, ...]:
    """The subscription, de-duplicated and sorted; InvalidValue naming the first bad entry."""
    if isinstance(event_types, str):
        raise InvalidValue(field, "a list of event types", code="webhook_endpoint.invalid_event_types")
    found = list(event_types or ())
    if not found or len(found) > MAX_EVENT_TYPES:
        raise InvalidValue(field, f"1 to {MAX_EVENT_TYPES} event types", code="webhook_endpoint.invalid_event_types")
    for entry in found:
        if not isinstance(entry, str) or (entry not in _KNOWN and entry not in WILDCARDS):
            raise InvalidValue(field, _why_not(entry), code="webhook_endpoint.unknown_event_type")
    return tuple(sorted(set(found)))


def _why_not(entry: object) -> str:
    shown = repr(entry)[:120]
    parts = entry.split(".") if isinstance(entry, str) else []
    if len(parts) >= 2 and parts[0] == "trafi" and parts[1] not in SUBSCRIBABLE:
        return (f"{shown}: events of {parts[1]!r} cannot be subscribed to; subscribable aggregates are "
                f"{', '.join(SUBSCRIBABLE)}")
    return (f"{shown} is not a subscribable event type: name a topic such as trafi.order.paid.v1 "
            "or every event of an aggregate, such as trafi.order.* (GET /v1/admin/webhooks/event-types lists them)")


def matches(event_types: Iterable[str], topic: str) -> bool:
    """Whether a subscription (checked by check_event_types) covers this topic."""
    for pattern in event_types:
        if pattern == topic or (pattern.endswith(".*") and topic.startswith(pattern[:-1])):
            return True
    return False


def redact_credentials(value: Any) -> Any:
    """The JSON value with every credential-hash field replaced (nested values included)."""
    if isinstance(value, dict):
        return {k: REDACTED if k in CREDENTIAL_FIELDS and v is not None else redact_credentials(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_credentials(v) for v in value]
    return value
