"""Blue/green rebuild: replay a projection from position 0 into fresh tables, then swap them in.

While the rebuild runs, the live tables keep serving queries and the live
runner keeps them current. The swap is one transaction: it locks the live
tracking row (so no live batch is half-way), drops the live tables, renames the
fresh ones into their place and hands their position to the live tracking row.
A rebuild that fails — a handler raising, Ctrl-C, a crash — leaves the live
tables as they were; the half-built copies are dropped (or on the next rebuild).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from commands.application import TrafiApplication
from projections.kafka import bookkeeping
from projections.projection import Projection
from projections.runner import Progress, ProjectionRunner
from projections.views import (
    ViewStore,
    ViewTransaction,
    claim_position,
    forget_position,
    record_position,
    table_renamer,
)

SUFFIX = "__next"


@dataclass(frozen=True)
class RebuildResult:
    name: str
    events_applied: int
    position: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events_applied / self.seconds if self.seconds else 0.0


def rebuild(
    app: TrafiApplication,
    views: ViewStore,
    projection: Projection,
    *,
    batch_size: int = 2000,
    progress: Progress | None = None,
) -> RebuildResult:
    started = time.perf_counter()
    fresh_name = projection.name + SUFFIX
    _discard(views, projection, fresh_name)  # leftovers of an interrupted rebuild
    runner = None
    try:
        runner = ProjectionRunner(
            app, views, projection, batch_size=batch_size, tracking_name=fresh_name,
            rename=table_renamer(projection.tables, SUFFIX),
        )
        caught_up = runner.catch_up(progress)
        caught_up.applied += runner.catch_up().applied  # what arrived meanwhile: keeps the swap short
        _analyze(views, projection)
        position = _swap(views, projection, fresh_name)
    except BaseException:
        _discard(views, projection, fresh_name)
        raise
    finally:
        if runner is not None:
            runner.close()
    return RebuildResult(projection.name, caught_up.applied, position, time.perf_counter() - started)


def _analyze(views: ViewStore, projection: Projection) -> None:
    # Fresh tables have no planner statistics until autovacuum gets to them; without
    # them the first queries after the swap can pick poor plans on a large table.
    if views.dialect == "postgres":
        with views.transaction() as tx:
            for table in projection.tables:
                tx.execute(f"ANALYZE {table}{SUFFIX}")


def _swap(views: ViewStore, projection: Projection, fresh_name: str) -> int:
    with views.transaction() as tx:
        claim_position(tx, projection.name)  # waits for a live batch in flight, blocks the next
        position = claim_position(tx, fresh_name)
        for table in projection.tables:
            tx.execute(f"DROP TABLE IF EXISTS {table}")
            tx.execute(f"ALTER TABLE {table}{SUFFIX} RENAME TO {table}")
            _rename_indexes(tx, table)
        record_position(tx, projection.name, position)  # also clears a halted projection's error
        forget_position(tx, fresh_name)
        # Fed from Kafka before? Its offsets described the old tables. A consumer started
        # after this hands off from the rebuilt position; until then the log runner may run it.
        bookkeeping.forget(tx, projection.name)
    return position


def _rename_indexes(tx: ViewTransaction, table: str) -> None:
    if tx.dialect == "postgres":
        rows = tx.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)).fetchall()
        for (index,) in rows:
            if SUFFIX in index:
                tx.execute(f'ALTER INDEX "{index}" RENAME TO "{index.replace(SUFFIX, "")}"')
        return
    # SQLite cannot rename an index: re-create it under its own name. (Automatic
    # indexes of PRIMARY KEY / UNIQUE follow the table's new name by themselves.)
    rows = tx.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", (table,)
    ).fetchall()
    for index, sql in rows:
        if SUFFIX in index:
            tx.execute(f'DROP INDEX "{index}"')
            tx.execute(sql.replace(index, index.replace(SUFFIX, ""), 1))


def _discard(views: ViewStore, projection: Projection, fresh_name: str) -> None:
    with views.transaction() as tx:
        for table in projection.tables:
            tx.execute(f"DROP TABLE IF EXISTS {table}{SUFFIX}")
        forget_position(tx, fresh_name)
