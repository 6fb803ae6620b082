"""Helpers for testing projections — Trafi's own and yours (see docs/custom-projections.md)."""

from __future__ import annotations

from pathlib import Path

from commands.application import TrafiApplication
from commands.config import EventStoreConfig
from projections.projection import Projection
from projections.runner import ProjectionRunner
from projections.views import ViewStore


def table_rows(views: ViewStore, projection: Projection) -> dict[str, list[tuple]]:
    """Every row of every table the projection owns, in a stable order: for row-for-row comparisons."""
    with views.read() as tx:
        return {
            table: sorted(tx.execute(f"SELECT * FROM {table}").fetchall(), key=lambda row: tuple(map(repr, row)))
            for table in projection.tables
        }


def clean_build(app: TrafiApplication, projection: Projection, directory: Path) -> dict[str, list[tuple]]:
    """Build the projection from position 0 into a brand-new SQLite view store and return its rows.

    SQLite whatever the event store: a read model must not depend on where events live.
    Compare with `table_rows` of the live views (types are portable: TEXT, BIGINT, INTEGER).
    """
    path = Path(directory) / f"clean-build-{projection.name}.sqlite"
    path.with_name(path.stem + "-views.sqlite").unlink(missing_ok=True)
    fresh = ViewStore(EventStoreConfig(kind="sqlite", sqlite_path=str(path)))
    try:
        ProjectionRunner(app, fresh, type(projection)()).catch_up()
        return table_rows(fresh, projection)
    finally:
        fresh.close()
