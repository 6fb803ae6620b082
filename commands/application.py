"""The write-side application: the event store that holds every aggregate's stream."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder

import domain  # noqa: F401  (registers every event topic before anything is read)
from commands.config import EventStoreConfig
from commands.eventstore import PersonalDataAsDict
from domain.changeset import ChangeSet
from domain.customer import Customer
from domain.diagnosis import StoreDiagnosis
from domain.product import Product
from domain.stock import StockItem


class TrafiApplication(Application[UUID]):
    name = "trafi"  # pinned: the events table is "trafi_events"; renaming the class must not move it
    # Long-lived streams get a snapshot every N events, so a load replays at most N events.
    # (A popular SKU's stock item gains an event per order; carts and orders stay short.)
    # (A diagnosis gains a run a day, for ever; a live ChangeSet a decision per decider tick.)
    snapshotting_intervals = {StockItem: 100, Product: 100, Customer: 100, StoreDiagnosis: 100, ChangeSet: 100}

    def __init__(self, config: EventStoreConfig | None = None, env: dict | None = None):
        self.config = config or EventStoreConfig.from_env()
        super().__init__(env={**self.config.eventsourcing_env(), **(env or {})})
        if self.snapshots is not None:
            self.recorder.snapshots_table_name = self.snapshots.recorder.events_table_name

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(PersonalDataAsDict())

    def load_many(self, ids: Sequence[UUID]) -> tuple[dict[UUID, Aggregate], dict[UUID, int]]:
        """Reconstruct several aggregates from one query.

        Each starts from its latest snapshot, if any. Returns the aggregates found
        and, for each, the notification id of its last event (what a replayed
        idempotent command reports as its position).
        """
        if not ids:
            return {}, {}
        streams: dict[UUID, list] = defaultdict(list)
        last_position: dict[UUID, int] = {}
        for stored, position in self.recorder.select_events_of(list(dict.fromkeys(ids))):
            streams[stored.originator_id].append(self.mapper.to_domain_event(stored))
            last_position[stored.originator_id] = position
        return {agg_id: _replay(events) for agg_id, events in streams.items()}, last_position


def _replay(events: list) -> Aggregate:
    # A plain loop: the library's project_aggregate() checks a Protocol with isinstance()
    # on every event, which makes long replays several times slower.
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate
