"""The view database: where read models and their tracking positions live.

PostgreSQL: the event store's own database (separate tables). SQLite: a file of
its own beside the event store, so projection writes never wait on command writes.
SQL is written once with `%s` placeholders; for SQLite they become `?`.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import psycopg
from psycopg_pool import ConnectionPool

from commands.config import EventStoreConfig

POSITIONS_TABLE = "trafi_projection_positions"


class ViewTransaction:
    """One transaction on the view database: the only way a projection writes."""

    def __init__(self, cursor, dialect: str):
        self._cursor = cursor
        self.dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self.dialect == "sqlite" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> ViewTransaction:
        self._cursor.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(self._sql(sql), [tuple(r) for r in rows])

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()


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
                "name TEXT PRIMARY KEY, position BIGINT NOT NULL, last_error TEXT)"
            )

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[ViewTransaction]:
        """Everything inside commits together, or not at all."""
        if self.dialect == "sqlite":
            conn = self._sqlite()
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield ViewTransaction(cursor, "sqlite")
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
            return
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield ViewTransaction(cursor, "postgres")

    def position(self, name: str) -> int:
        with self.transaction() as tx:
            row = tx.execute(f"SELECT position FROM {POSITIONS_TABLE} WHERE name = %s", (name,)).fetchone()
        return row[0] if row else 0

    def status(self, name: str) -> tuple[int, str | None]:
        with self.transaction() as tx:
            row = tx.execute(f"SELECT position, last_error FROM {POSITIONS_TABLE} WHERE name = %s", (name,)).fetchone()
        return (row[0], row[1]) if row else (0, None)

    def close(self) -> None:
        if self.dialect == "postgres":
            self._pool.close()


def record_position(tx: ViewTransaction, name: str, position: int, error: str | None = None) -> None:
    """Written in the same transaction as the rows it accounts for: exactly-once."""
    tx.execute(
        f"INSERT INTO {POSITIONS_TABLE} (name, position, last_error) VALUES (%s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, last_error = excluded.last_error",
        (name, position, error),
    )
