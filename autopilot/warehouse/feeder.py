"""Feeding the warehouse from its two logs, a batch at a time, each event exactly once.

Sources, each with its tracking position in `warehouse_positions`:
* telemetry — storefront events from the telemetry log (`read(after, limit)`, `head()`),
  rows in TELEMETRY_COLUMNS order, and the exposures the server appended there (into `exposures`);
* commerce — domain events from the event store's notification log (the topics of
  commerce.TOPICS), decoded with the application's mapper as projections do.

A batch's rows, every aggregate it changes and its source's new position are one DuckDB
transaction: a crash anywhere (even kill -9) leaves the warehouse as it was before the batch,
and the next feeder on the same file starts again from the committed position. Because the
merges are order-independent (aggregates.py), the result equals a rebuild from position 0.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Protocol

import pyarrow as pa

from autopilot.warehouse.aggregates import Step, apply_deltas, apply_staged, start_deltas
from autopilot.warehouse.commerce import TOPICS, PaymentFees, apply_commerce, commerce_batch
from autopilot.warehouse.storefront import load_exposures, stage_telemetry, telemetry_table
from autopilot.warehouse.store import Warehouse, record_position

# Called after each committed batch with (source, events in it, new position).
Progress = Callable[[str, int, int], None]


class TelemetrySource(Protocol):
    def read(self, after: int, limit: int) -> list[tuple]: ...

    def head(self) -> int: ...


class _Batch(NamedTuple):
    rows: int
    through: int  # the position of its last row
    table: pa.Table


class WarehouseFeeder:
    def __init__(
        self,
        warehouse: Warehouse,
        *,
        app=None,
        telemetry: TelemetrySource | None = None,
        fees: PaymentFees = PaymentFees(),
        telemetry_batch: int = 50_000,
        commerce_batch: int = 2_000,
        step: Step | None = None,
    ):
        self.warehouse = warehouse
        self.app = app  # a TrafiApplication: the commerce log; None feeds storefront events only
        self.telemetry = telemetry
        self.fees = fees
        self.telemetry_batch = telemetry_batch
        self.commerce_batch = commerce_batch
        self._step = step or (lambda _: None)

    # -- one batch per source ----------------------------------------------------------------
    def feed_telemetry(self) -> int:
        """Load the next batch of storefront events; returns how many (0: caught up)."""
        if self.telemetry is None:
            return 0
        position = self.warehouse.position("telemetry")
        batch = self._read_telemetry(position, self.telemetry_batch)
        if batch is None:
            return 0
        with self.warehouse.writing() as cur:
            if _claimed(cur, "telemetry") != position:
                return 0  # another writer of this warehouse got there first: read again
            cur.register("telemetry_batch", batch.table)
            try:
                start_deltas(cur)
                stage_telemetry(cur)
                self._step("staged")
                apply_staged(cur, self._step)
                load_exposures(cur)
                self._step("exposures")
                apply_deltas(cur)
                self._step("aggregates")
                record_position(cur, "telemetry", batch.through)
            finally:
                cur.unregister("telemetry_batch")
        return batch.rows

    def _read_telemetry(self, after: int, limit: int) -> _Batch | None:
        rows = self.telemetry.read(after, limit)
        if not rows:
            return None
        return _Batch(len(rows), rows[-1][0], telemetry_table(rows))

    def feed_commerce(self) -> int:
        """Load the next batch of the commerce log; returns how many positions it advanced."""
        if self.app is None:
            return 0
        recorder = self.app.recorder
        # Every id up to the visible head is committed (appends are serialised in id order), so
        # the batch may record the head as its position even when none of its events matter here.
        head = recorder.max_notification_id() or 0
        position = self.warehouse.position("commerce")
        if position >= head:
            return 0
        notifications = recorder.select_notifications(
            start=position + 1, limit=self.commerce_batch, stop=head, topics=TOPICS
        )
        through = notifications[-1].id if len(notifications) == self.commerce_batch else head
        batch = commerce_batch(notifications, self.app.mapper, self.fees)
        with self.warehouse.writing() as cur:
            if _claimed(cur, "commerce") != position:
                return 0
            start_deltas(cur)
            apply_commerce(cur, batch, self._step)
            apply_deltas(cur)
            self._step("aggregates")
            record_position(cur, "commerce", through)
        return through - position

    # -- loops ----------------------------------------------------------------------------------
    def feed_once(self) -> int:
        """One batch from each source (commerce first: storefront events then find its products)."""
        return self.feed_commerce() + self.feed_telemetry()

    def catch_up(self, progress: Progress | None = None) -> int:
        """Feed until both sources are at their head; returns the events and positions consumed."""
        total = 0
        while True:
            commerce = self.feed_commerce()
            if commerce and progress:
                progress("commerce", commerce, self.warehouse.position("commerce"))
            telemetry = self.feed_telemetry()
            if telemetry and progress:
                progress("telemetry", telemetry, self.warehouse.position("telemetry"))
            total += commerce + telemetry
            if not commerce and not telemetry:
                return total

    def lag(self) -> dict[str, int]:
        """How far each source's log is ahead of the warehouse (positions)."""
        positions = self.warehouse.positions()
        heads = {
            "telemetry": self.telemetry.head() if self.telemetry is not None else positions["telemetry"],
            "commerce": (self.app.recorder.max_notification_id() or 0) if self.app is not None else positions["commerce"],
        }
        return {source: max(0, heads[source] - positions[source]) for source in heads}


def _claimed(cur, source: str) -> int:
    return cur.execute("SELECT position FROM warehouse_positions WHERE source = ?", [source]).fetchall()[0][0]
