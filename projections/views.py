"""The view database: where read models and their tracking positions live.

PostgreSQL: the event store's own database (separate tables). SQLite: a file of
its own beside the event store, so projection writes never wait on command writes.
SQL is written once with `%s` placeholders; for SQLite they become `?`.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from psycopg_pool import ConnectionPool

from commands.config import EventStoreConfig
from projections.row_batch import Row, RowBatch

POSITIONS_TABLE = "trafi_projection_positions"


class ViewTransaction:
    """One transaction on the view database: the only way a projection writes.

    Two ways to write, freely mixed: SQL (`execute`, `executemany`) and rows
    (`insert`, `update`, `upsert`), which are buffered and merged per key until
    the next SQL statement or the commit (see row_batch.py for why and the rules).
    """

    def __init__(self, cursor, dialect: str, rename: Callable[[str], str] | None = None):
        self._cursor = cursor
        self.dialect = dialect
        self._rename = rename  # set while a rebuild writes into fresh copies of the tables
        self._rows = RowBatch(self._executemany_now)

    def _sql(self, sql: str) -> str:
        if self._rename is not None:
            sql = self._rename(sql)
        return sql.replace("%s", "?") if self.dialect == "sqlite" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> ViewTransaction:
        self._rows.flush()
        self._cursor.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._rows.flush()
        self._executemany_now(sql, rows)

    def _executemany_now(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    def insert(self, table: str, row: Row) -> None:
        self._rows.insert(table, row)

    def update(self, table: str, key: Row, *, set: Row | None = None, add: Row | None = None) -> None:
        self._rows.update(table, key, set, add)

    def upsert(self, table: str, key: Row, *, set: Row | None = None, add: Row | None = None) -> None:
        self._rows.upsert(table, key, set, add)

    def flush(self) -> None:
        self._rows.flush()


_SCHEMA_LOCK = 0x7472_6166_6900  # "trafi\0": the advisory lock key of read-model schema changes


class ViewStore:
    def __init__(self, config: EventStoreConfig):
        self.dialect = config.kind
        if config.kind == "sqlite":
            path = config.sqlite_path
            self._path = path if path == ":memory:" else str(Path(path).with_name(Path(path).stem + "-views.sqlite"))
            self._local = threading.local()
        else:
            self._pool = ConnectionPool(config.postgres_dsn, min_size=1, max_size=4, open=True)
        with self.transaction() as tx:
            tx.execute(
                f"CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} ("
                "name TEXT PRIMARY KEY, position BIGINT NOT NULL, last_error TEXT, updated_at TEXT)"
            )
            _add_updated_at_to_older_tables(tx)
            from projections.kafka import bookkeeping  # (imports this module)

            bookkeeping.create_tables(tx)  # so every runner can ask whether a projection runs from Kafka

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, rename: Callable[[str], str] | None = None) -> Iterator[ViewTransaction]:
        """Everything inside commits together, or not at all.

        SQLite: BEGIN IMMEDIATE takes the write lock up front, so writers never
        deadlock on a lock upgrade. PostgreSQL: statements are pipelined — a
        batch of handler INSERTs costs one round trip, not one each.
        """
        if self.dialect == "sqlite":
            conn = self._sqlite()
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                tx = ViewTransaction(cursor, "sqlite", rename)
                yield tx
                tx.flush()
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return
        with self._pool.connection() as conn, conn.transaction(), conn.pipeline(), conn.cursor() as cursor:
            tx = ViewTransaction(cursor, "postgres", rename)
            yield tx
            tx.flush()

    @contextmanager
    def schema_transaction(self, rename: Callable[[str], str] | None = None) -> Iterator[ViewTransaction]:
        """A transaction for `CREATE … IF NOT EXISTS`. On PostgreSQL two processes creating the same
        table at the same moment collide (a unique violation in pg_type), as several API workers
        starting together do; a transaction-scoped advisory lock makes them take turns."""
        with self.transaction(rename) as tx:
            if self.dialect == "postgres":
                tx.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            yield tx

    @contextmanager
    def read(self) -> Iterator[ViewTransaction]:
        """A read-only snapshot for queries: every statement inside sees the same committed state.

        (SQLite: a read transaction in WAL mode, no write lock. PostgreSQL: REPEATABLE READ,
        so a page and then its lines cannot straddle a projection batch.)
        """
        if self.dialect == "sqlite":
            conn = self._sqlite()
            cursor = conn.cursor()
            cursor.execute("BEGIN")
            try:
                yield ViewTransaction(cursor, "sqlite")
            finally:
                conn.rollback()
            return
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield ViewTransaction(cursor, "postgres")

    def position(self, name: str) -> int:
        with self.read() as tx:
            row = tx.execute(f"SELECT position FROM {POSITIONS_TABLE} WHERE name = %s", (name,)).fetchone()
        return row[0] if row else 0

    def status(self, name: str) -> tuple[int, str | None]:
        with self.read() as tx:
            row = tx.execute(f"SELECT position, last_error FROM {POSITIONS_TABLE} WHERE name = %s", (name,)).fetchone()
        return (row[0], row[1]) if row else (0, None)

    def tracking_rows(self) -> dict[str, tuple[int, str | None, str | None]]:
        """name → (position, last error, updated at) for every tracked projection."""
        with self.read() as tx:
            rows = tx.execute(f"SELECT name, position, last_error, updated_at FROM {POSITIONS_TABLE}").fetchall()
        return {name: (position, error, updated) for name, position, error, updated in rows}

    def close(self) -> None:
        if self.dialect == "postgres":
            self._pool.close()


def _add_updated_at_to_older_tables(tx: ViewTransaction) -> None:
    # View databases written before `updated_at` existed keep working.
    if tx.dialect == "postgres":
        tx.execute(f"ALTER TABLE {POSITIONS_TABLE} ADD COLUMN IF NOT EXISTS updated_at TEXT")
    elif "updated_at" not in {row[1] for row in tx.execute(f"PRAGMA table_info({POSITIONS_TABLE})").fetchall()}:
        tx.execute(f"ALTER TABLE {POSITIONS_TABLE} ADD COLUMN updated_at TEXT")


def claim_position(tx: ViewTransaction, name: str) -> int:
    """Lock the projection's tracking row for this transaction and return its position.

    Two workers running the same projection, or a worker and a rebuild's swap,
    take turns here: the loser waits, then reads the winner's committed position,
    so nobody applies an event the other has already applied. (SQLite's
    BEGIN IMMEDIATE already serialises writers; FOR UPDATE is PostgreSQL's.)
    """
    tx.execute(
        f"INSERT INTO {POSITIONS_TABLE} (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING", (name,)
    )
    lock = " FOR UPDATE" if tx.dialect == "postgres" else ""
    return tx.execute(f"SELECT position FROM {POSITIONS_TABLE} WHERE name = %s{lock}", (name,)).fetchone()[0]


def record_position(tx: ViewTransaction, name: str, position: int, error: str | None = None) -> None:
    """Written in the same transaction as the rows it accounts for: exactly-once."""
    tx.execute(
        f"INSERT INTO {POSITIONS_TABLE} (name, position, last_error, updated_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, last_error = excluded.last_error, "
        "updated_at = excluded.updated_at",
        (name, position, error, datetime.now(timezone.utc).isoformat()),
    )


def forget_position(tx: ViewTransaction, name: str) -> None:
    tx.execute(f"DELETE FROM {POSITIONS_TABLE} WHERE name = %s", (name,))


def table_renamer(tables: Sequence[str], suffix: str) -> Callable[[str], str]:
    """Rewrite SQL so a projection's tables — and its indexes, named `<table>_…` — get a suffix.

    This is what lets a rebuild run the projection's unchanged handlers against
    fresh tables (blue/green) while the live tables keep serving queries.
    """
    if not tables:
        raise ValueError("a projection must declare the tables it owns to be rebuilt")
    pattern = re.compile(r"\b((?:" + "|".join(re.escape(t) for t in sorted(tables, key=len, reverse=True)) + r")\w*)")
    # Cached: a batch sends the same few statements thousands of times.
    return functools.lru_cache(maxsize=512)(lambda sql: pattern.sub(lambda m: m.group(1) + suffix, sql))
