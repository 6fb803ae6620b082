"""Which store an event belongs to, for readers that see every aggregate's events.

Only an aggregate's creation event names its store (domain/envelope.py,
`store_id_at_creation`); later events do not repeat it. A projection that needs
the store of every event (outbound webhooks, the Kafka relay) keeps a table of
aggregate id → store id, filled from creation events in log order, and looks a
batch's aggregates up in one query.
"""

from __future__ import annotations

from typing import Sequence
from uuid import UUID

from domain.envelope import store_id_at_creation
from projections.views import ViewTransaction

_CHUNK = 500  # parameters per IN list: far below either database's limit


def create_table(tx: ViewTransaction, table: str) -> None:
    tx.execute(f"CREATE TABLE IF NOT EXISTS {table} (aggregate_id TEXT PRIMARY KEY, store_id TEXT NOT NULL)")


def stores_of(
    tx: ViewTransaction,
    table: str,
    notifications: Sequence,
    mapper,
    decoded: dict[int, object],
    *,
    ignore: frozenset[str] = frozenset(),
    known: dict[UUID, str] | None = None,
) -> dict[UUID, str]:
    """aggregate id → store id for the batch's events; records the aggregates created in it.

    `decoded` receives the creation events this had to decode (notification id → event),
    so the caller decodes none twice. Events whose topic is in `ignore` are left out.
    `known` is a cache the caller keeps across batches (the mapping never changes);
    aggregates found in it cost no query.
    """
    stores: dict[UUID, str] = {}
    created = []
    for notification in notifications:
        if notification.originator_version != 1 or notification.topic in ignore:
            continue
        event = mapper.to_domain_event(notification)
        decoded[notification.id] = event
        store = store_id_at_creation(notification.topic, event)
        if store is not None:
            stores[notification.originator_id] = str(store)
            created.append((str(notification.originator_id), str(store)))
    tx.executemany(
        f"INSERT INTO {table} (aggregate_id, store_id) VALUES (%s, %s) ON CONFLICT (aggregate_id) DO NOTHING", created,
    )
    unknown = set()
    for notification in notifications:
        aggregate = notification.originator_id
        if aggregate in stores or notification.topic in ignore:
            continue
        if known is not None and aggregate in known:
            stores[aggregate] = known[aggregate]
        else:
            unknown.add(str(aggregate))
    for chunk in chunks(sorted(unknown)):
        rows = tx.execute(
            f"SELECT aggregate_id, store_id FROM {table} WHERE aggregate_id IN ({marks(chunk)})", chunk,
        ).fetchall()
        stores.update((UUID(aggregate), store) for aggregate, store in rows)
    if known is not None:
        known.update(stores)
    return stores


def chunks(values: list[str]) -> list[list[str]]:
    return [values[i:i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def marks(values: list) -> str:
    return ", ".join(["%s"] * len(values))
