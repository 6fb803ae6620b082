"""Running a projection: read the notification log after its position, apply, commit with the position.

Exactly-once: a batch's rows and the projection's new position are one
transaction, and that transaction starts by locking the projection's tracking
row, so a crash anywhere replays the whole batch or none of it, and two
runners of the same projection never apply the same event twice.

A handler that raises halts the projection at that very event: the batch is
re-applied one event at a time, the failing event is not applied, and its
error is recorded beside the position. After a fix, the next run starts from
that same event — it is never skipped.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from commands.application import TrafiApplication
from projections.kafka import bookkeeping
from projections.projection import Projection
from projections.views import ViewStore, claim_position, record_position

log = logging.getLogger("trafi.projections")

# Called after every committed batch with (events applied so far, position, log head).
Progress = Callable[[int, int, int], None]


class FedFromKafka(Exception):
    """The projection runs from Kafka now (`--source kafka`): the log runner must not apply it too."""

    def __init__(self, name: str):
        super().__init__(f"projection {name} runs from Kafka; to run it from the database log again, "
                         f"rebuild it (trafi projections rebuild {name})")
        self.name = name


class ProjectionHalted(Exception):
    def __init__(self, name: str, position: int, error: str):
        super().__init__(f"projection {name} halted after position {position}: {error}")
        self.name = name
        self.position = position
        self.error = error


@dataclass
class CatchUp:
    applied: int
    position: int


class ProjectionRunner:
    def __init__(
        self,
        app: TrafiApplication,
        views: ViewStore,
        projection: Projection,
        *,
        batch_size: int = 500,
        tracking_name: str | None = None,
        rename: Callable[[str], str] | None = None,
    ):
        if not projection.name:
            raise ValueError(f"{type(projection).__name__} needs a pinned name")
        self.app = app
        self.views = views
        self.projection = projection
        self.batch_size = batch_size
        # A rebuild runs the same projection under another tracking row, into renamed tables.
        self.tracking_name = tracking_name or projection.name
        self._rename = rename
        # The next batch is read while this one is applied: reading waits on the database,
        # applying on the CPU, so a rebuild overlaps the two. Keyed by (position, head).
        self._reader: ThreadPoolExecutor | None = None
        self._read_ahead: tuple[int, int, Future] | None = None
        with views.schema_transaction(rename) as tx:
            projection.setup(tx)

    @property
    def name(self) -> str:
        return self.projection.name

    def catch_up(self, progress: Progress | None = None) -> CatchUp:
        """Apply everything recorded so far. Raises ProjectionHalted at a failing event."""
        applied = 0
        while True:
            # Every id up to the visible head is committed (appends are serialised in id
            # order), so reading up to it and then recording it as the position is safe —
            # also when none of those events is one this projection handles.
            head = self.app.recorder.max_notification_id() or 0
            # A plain read first: an idle wake-up must not cost a locking write transaction.
            position = self.views.position(self.tracking_name)
            while position < head:  # one pass up to this head, then look again
                batch_applied, position = self._advance(head)
                applied += batch_applied
                if progress is not None:
                    progress(applied, position, head)
            if head == (self.app.recorder.max_notification_id() or 0):
                return CatchUp(applied, position)

    def _advance(self, head: int) -> tuple[int, int]:
        """Apply one batch after the current position; return (applied, new position)."""
        try:
            with self.views.transaction(self._rename) as tx:
                position = self._claim(tx)
                if position >= head:
                    return 0, position
                notifications = self._read(position, head)
                through = notifications[-1].id if len(notifications) == self.batch_size else head
                if through < head:
                    self._read_ahead = (through, head, self._background().submit(self._select, through, head))
                self.projection.apply_batch(tx, notifications, self.app.mapper)
                record_position(tx, self.tracking_name, through)
                return len(notifications), through
        except FedFromKafka:
            raise
        except Exception as error:
            if self.projection.failures_are_transient:  # nothing to isolate: try the batch again later
                raise self._halted(f"{type(error).__name__}: {error}") from error
            return self._apply_one_by_one(head)  # raises ProjectionHalted at the failing event

    def _claim(self, tx) -> int:
        """Lock the tracking row; refuse if the projection has moved to Kafka meanwhile."""
        position = claim_position(tx, self.tracking_name)
        if self.tracking_name == self.projection.name and bookkeeping.kafka_sourced(tx, self.tracking_name):
            raise FedFromKafka(self.name)
        return position

    def _read(self, position: int, head: int):
        ahead, self._read_ahead = self._read_ahead, None
        if ahead is not None and ahead[:2] == (position, head):
            return ahead[2].result()
        return self._select(position, head)

    def _background(self) -> ThreadPoolExecutor:
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"trafi-read-{self.name}")
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.shutdown(wait=True)
            self._reader = None

    def _select(self, position: int, head: int):
        return self.app.recorder.select_notifications(
            start=position + 1, limit=self.batch_size, stop=head, topics=self.projection.topics or ()
        )

    def _apply_one_by_one(self, head: int) -> tuple[int, int]:
        applied = 0
        self._read_ahead = None
        position = self.views.position(self.tracking_name)
        for notification in self._select(position, head):
            try:
                with self.views.transaction(self._rename) as tx:
                    position = self._claim(tx)
                    if position >= notification.id:
                        continue  # another runner got here first
                    self.projection.apply_batch(tx, [notification], self.app.mapper)
                    record_position(tx, self.tracking_name, notification.id)
                    position = notification.id
            except FedFromKafka:
                raise
            except Exception as error:
                reason = f"{type(error).__name__}: {error} (event {notification.id}, {notification.topic})"
                raise self._halted(reason) from error
            applied += 1
        return applied, position

    def _halted(self, reason: str) -> ProjectionHalted:
        """Record why the projection stopped, beside the position of the last event really applied."""
        with self.views.transaction() as tx:
            position = claim_position(tx, self.tracking_name)
            record_position(tx, self.tracking_name, position, reason)
        log.error("projection %s halted: %s", self.name, reason)
        return ProjectionHalted(self.name, position, reason)
