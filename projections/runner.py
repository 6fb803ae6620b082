"""Running a projection: read the notification log after its position, apply, commit with the position.

Exactly-once: a batch's rows and the projection's new position are one
transaction, so a crash anywhere replays the whole batch or none of it.
A handler that raises halts the projection at that very event: earlier events
of the batch are applied one by one, the failing one is not, and its error is
recorded beside the position. After a fix, the next run starts from that event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from commands.application import TrafiApplication
from projections.projection import Projection
from projections.views import ViewStore, record_position

log = logging.getLogger("trafi.projections")


class ProjectionHalted(Exception):
    def __init__(self, name: str, position: int, error: str):
        super().__init__(f"projection {name} halted before event {position + 1}: {error}")
        self.name = name
        self.position = position
        self.error = error


@dataclass
class CatchUp:
    applied: int
    position: int


class ProjectionRunner:
    def __init__(self, app: TrafiApplication, views: ViewStore, projection: Projection, *, batch_size: int = 500):
        if not projection.name:
            raise ValueError(f"{type(projection).__name__} needs a pinned name")
        self.app = app
        self.views = views
        self.projection = projection
        self.batch_size = batch_size
        with views.transaction() as tx:
            projection.setup(tx)

    @property
    def name(self) -> str:
        return self.projection.name

    def catch_up(self) -> CatchUp:
        """Apply everything recorded so far. Raises ProjectionHalted at a failing event."""
        position = self.views.position(self.name)
        applied = 0
        while True:
            # Every id up to the visible head is committed (appends are serialised in id
            # order), so reading up to it and then recording it as the position is safe —
            # also when none of those events is one this projection handles.
            head = self.app.recorder.max_notification_id() or 0
            if position >= head:
                return CatchUp(applied, position)
            notifications = self.app.recorder.select_notifications(
                start=position + 1, limit=self.batch_size, stop=head, topics=self.projection.topics
            )
            through = notifications[-1].id if len(notifications) == self.batch_size else head
            try:
                with self.views.transaction() as tx:
                    for notification in notifications:
                        self.projection.apply(tx, self.app.mapper.to_domain_event(notification))
                    record_position(tx, self.name, through)
            except Exception:
                applied += self._apply_one_by_one(notifications)  # raises ProjectionHalted
                through = notifications[-1].id
            else:
                applied += len(notifications)
            position = through

    def _apply_one_by_one(self, notifications) -> int:
        applied = 0
        for notification in notifications:
            try:
                with self.views.transaction() as tx:
                    self.projection.apply(tx, self.app.mapper.to_domain_event(notification))
                    record_position(tx, self.name, notification.id)
            except Exception as error:
                # The last position actually applied (ids may have gaps: not simply id − 1).
                position = self.views.position(self.name)
                reason = f"{type(error).__name__}: {error} (event {notification.id}, {notification.topic})"
                with self.views.transaction() as tx:
                    record_position(tx, self.name, position, reason)
                log.error("projection %s halted: %s", self.name, reason)
                raise ProjectionHalted(self.name, position, reason) from error
            applied += 1
        return applied
