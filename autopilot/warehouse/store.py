"""The warehouse file: one DuckDB database, one owner process, one writer, many readers.

DuckDB lets one process open a file (a second opener is refused, even read-only), so the
process that owns it — the API server in embedded mode, the analytics worker when scaled —
holds a `Warehouse` for its lifetime. Inside it, every thread works on its own cursor (a
DuckDB connection to the same database): the feeder writes a batch in one transaction on
its cursor while queries read on theirs and see the last committed batch, never half of one.
Writes are serialised by a lock, so the feeder, a rebuild step or a scheduled job never
write-conflict with each other.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from autopilot.warehouse.schema import create_schema

SOURCES = ("telemetry", "commerce")


class Warehouse:
    def __init__(self, path: str | Path, *, threads: int | None = None, memory_limit: str | None = None):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Batches are large: fold the write-ahead log into the file every few of them, not every one.
        config = {"checkpoint_threshold": "256MB"}
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        self._con = duckdb.connect(self.path, config=config)
        self._write_lock = threading.Lock()
        self._closed = False
        with self.writing() as cur:
            create_schema(cur)
            cur.executemany(
                "INSERT INTO warehouse_positions VALUES (?, 0) ON CONFLICT DO NOTHING", [(s,) for s in SOURCES]
            )

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of this thread's own for queries; it sees committed batches only."""
        cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction, committed when the block ends and rolled back when it raises."""
        with self._write_lock:
            cur = self._con.cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                cur.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread; the caller closes it (`reading()` does that for you)."""
        return self._con.cursor()

    def position(self, source: str) -> int:
        with self.reading() as cur:
            return cur.execute("SELECT position FROM warehouse_positions WHERE source = ?", [source]).fetchall()[0][0]

    def positions(self) -> dict[str, int]:
        with self.reading() as cur:
            return dict(cur.execute("SELECT source, position FROM warehouse_positions").fetchall())

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file (DuckDB also does it by itself as the log grows)."""
        with self._write_lock:
            self._con.execute("CHECKPOINT")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with self._write_lock:
                self._con.close()


def record_position(cur: duckdb.DuckDBPyConnection, source: str, position: int) -> None:
    """Inside a batch's transaction: the position it loaded through commits with its rows."""
    cur.execute("UPDATE warehouse_positions SET position = ? WHERE source = ?", [position, source])
