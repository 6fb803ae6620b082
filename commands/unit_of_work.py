"""Unit of work: an identity map of the aggregates one command touches, saved in one transaction.

Tenancy lives here: an aggregate of another store — or of another type than
asked for — is indistinguishable from one that does not exist.
"""

from __future__ import annotations

from typing import Iterable, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from commands.application import TrafiApplication
from commands.context import StoreContext
from domain.errors import NotFound

A = TypeVar("A", bound=Aggregate)


class UnitOfWork:
    def __init__(self, app: TrafiApplication, ctx: StoreContext):
        self.app = app
        self.ctx = ctx
        self._aggregates: dict[UUID, Aggregate | None] = {}
        self.positions: dict[UUID, int] = {}

    def load(self, ids: Iterable[UUID]) -> None:
        """Fetch every not-yet-loaded aggregate among `ids` in one query."""
        missing = [i for i in dict.fromkeys(ids) if i not in self._aggregates]
        if not missing:
            return
        found, positions = self.app.load_many(missing)
        self.positions.update(positions)
        for agg_id in missing:
            self._aggregates[agg_id] = found.get(agg_id)

    def find(self, cls: type[A], agg_id: UUID) -> A | None:
        self.load([agg_id])
        aggregate = self._aggregates[agg_id]
        if not isinstance(aggregate, cls) or aggregate.store_id != self.ctx.store_id:
            return None
        return aggregate

    def get(self, cls: type[A], agg_id: UUID, what: str) -> A:
        aggregate = self.find(cls, agg_id)
        if aggregate is None:
            raise NotFound(what, agg_id)
        return aggregate

    def exists(self, agg_id: UUID) -> bool:
        """Whether the id is taken at all — by any store or type (for deterministic-id creations)."""
        self.load([agg_id])
        return self._aggregates[agg_id] is not None

    def add(self, aggregate: Aggregate) -> None:
        # Re-insert so that what is added last is saved last (an idempotency
        # record's position must be the command's last position).
        self._aggregates.pop(aggregate.id, None)
        self._aggregates[aggregate.id] = aggregate

    def changed(self) -> list[Aggregate]:
        return [a for a in self._aggregates.values() if a is not None and a.pending_events]

    def commit(self) -> int | None:
        """Save every touched aggregate with pending events in one transaction.

        Returns the notification id of the last event saved, or None if the
        command changed nothing.
        """
        changed = self.changed()
        if not changed:
            return None
        recordings = self.app.save(*changed)
        return recordings[-1].notification.id
