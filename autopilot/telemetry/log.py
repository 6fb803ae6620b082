"""The telemetry log: accepted storefront events, durable and in a gap-free order, plus flow counters.

It lives apart from the commerce event log so that a burst of page views never waits on a
checkout's write (nor the other way round):

* SQLite (embedded): `telemetry.sqlite` beside the event store's file, WAL with
  synchronous=FULL, so a batch acknowledged to the browser survives a power cut.
* PostgreSQL: the table `trafi_telemetry` in the event store's database, with its own lock.

Positions are dense, 1, 2, 3 … in commit order. A writer takes the table's write lock (SQLite's
BEGIN IMMEDIATE; PostgreSQL's EXCLUSIVE table lock, which still lets readers read), numbers its
rows after the highest committed position and commits before the next writer gets the lock. So
a reader that has seen position p will never see a row below p appear later: the warehouse
feeder can track a single number (`read(after=p)`), as projections do with the commerce log.

Concurrent appends share a transaction and its fsync (group_commit.py); each still stands or
falls whole. The flow counters (per store and minute, and per store in total) are written in the
same transaction as the events they count, so they survive restarts and add up across API processes.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from autopilot.telemetry.columns import TELEMETRY_COLUMNS
from autopilot.telemetry.group_commit import GroupCommit
from commands.config import EventStoreConfig

TABLE = "trafi_telemetry"
FLOW_TABLE = "trafi_telemetry_flow"  # per store and minute of arrival
TOTALS_TABLE = "trafi_telemetry_totals"  # per store, all time (what /metrics reports)
SQLITE_FILE = "telemetry.sqlite"

US_PER_MINUTE = 60_000_000

# What an appended event supplies, as a tuple in this order (position, store and arrival time come
# from the log). Tuples rather than dicts: this is the hot path, and `event_row` builds one by name.
EVENT_COLUMNS = tuple(c for c in TELEMETRY_COLUMNS if c not in ("position", "store_id", "received_at_us"))
_NOT_NULL = {"position", "store_id", "event_id", "kind", "occurred_at_us", "received_at_us"}
_SQL_TYPES = {"position": "BIGINT", "occurred_at_us": "BIGINT", "received_at_us": "BIGINT", "quantity": "INTEGER",
              "price_minor": "BIGINT", "value_minor": "BIGINT"}
_SCHEMA_LOCK = 0x7472_6166_6974  # "trafit": advisory lock of the telemetry tables' creation (PostgreSQL)


@dataclass(frozen=True)
class AppendResult:
    accepted: list[str]  # event ids stored by this call, in input order
    duplicates: list[str]  # event ids already stored (or repeated within the batch), in input order


@dataclass(frozen=True)
class _Append:
    store_id: str
    events: Sequence[Sequence[Any]]
    received_at_us: int
    rejected: int
    refused_batches: int
    flow: bool = True  # counted in the flow counters (storefront traffic); server-side rows are not


@dataclass(frozen=True)
class FlowMinute:
    minute: int  # minutes since the Unix epoch (UTC) in which the events arrived
    accepted: int
    duplicates: int
    rejected: int  # events refused by validation
    refused_batches: int  # whole requests refused (not JSON, not a batch)


@dataclass(frozen=True)
class FlowTotals:
    store_id: str
    accepted: int
    duplicates: int
    rejected: int
    refused_batches: int
    first_minute: int | None  # the first minute with an accepted event
    last_accepted_at_us: int | None


def _table_sql(dialect: str) -> list[str]:
    def column(name: str) -> str:
        if name == "position":
            # SQLite: exactly "INTEGER PRIMARY KEY" makes it the rowid, so rows are stored in position order.
            return "position INTEGER PRIMARY KEY" if dialect == "sqlite" else "position BIGINT PRIMARY KEY"
        return f"{name} {_SQL_TYPES.get(name, 'TEXT')}{' NOT NULL' if name in _NOT_NULL else ''}"

    counters = "accepted BIGINT NOT NULL, duplicates BIGINT NOT NULL, rejected BIGINT NOT NULL, refused_batches BIGINT NOT NULL"
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(column(c) for c in TELEMETRY_COLUMNS)}, "
        "UNIQUE (event_id, store_id))",  # event_id leads: the de-duplication probe is `event_id = ANY(…)`
        f"CREATE TABLE IF NOT EXISTS {FLOW_TABLE} (store_id TEXT NOT NULL, minute BIGINT NOT NULL, {counters}, "
        "PRIMARY KEY (store_id, minute))",
        f"CREATE TABLE IF NOT EXISTS {TOTALS_TABLE} (store_id TEXT PRIMARY KEY, {counters}, first_minute BIGINT, "
        "last_accepted_at_us BIGINT)",
    ]


_INSERT = (f"INSERT INTO {TABLE} ({', '.join(TELEMETRY_COLUMNS)}) "
           f"VALUES ({', '.join(['%s'] * len(TELEMETRY_COLUMNS))})")
_COUNT_MINUTE = (
    f"INSERT INTO {FLOW_TABLE} AS f (store_id, minute, accepted, duplicates, rejected, refused_batches) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (store_id, minute) DO UPDATE SET "
    "accepted = f.accepted + excluded.accepted, duplicates = f.duplicates + excluded.duplicates, "
    "rejected = f.rejected + excluded.rejected, refused_batches = f.refused_batches + excluded.refused_batches"
)
# first_minute/last_accepted_at_us are NULL in `excluded` when nothing was accepted: then they stay.
_COUNT_TOTAL = (
    f"INSERT INTO {TOTALS_TABLE} AS t (store_id, accepted, duplicates, rejected, refused_batches, first_minute, "
    "last_accepted_at_us) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (store_id) DO UPDATE SET "
    "accepted = t.accepted + excluded.accepted, duplicates = t.duplicates + excluded.duplicates, "
    "rejected = t.rejected + excluded.rejected, refused_batches = t.refused_batches + excluded.refused_batches, "
    "first_minute = CASE WHEN t.first_minute IS NULL OR excluded.first_minute < t.first_minute "
    "  THEN COALESCE(excluded.first_minute, t.first_minute) ELSE t.first_minute END, "
    "last_accepted_at_us = CASE WHEN t.last_accepted_at_us IS NULL OR excluded.last_accepted_at_us > t.last_accepted_at_us "
    "  THEN COALESCE(excluded.last_accepted_at_us, t.last_accepted_at_us) ELSE t.last_accepted_at_us END"
)
_COPY = f"COPY {TABLE} ({', '.join(TELEMETRY_COLUMNS)}) FROM STDIN"
_HEAD = f"SELECT COALESCE(MAX(position), 0) FROM {TABLE}"
_READ = f"SELECT {', '.join(TELEMETRY_COLUMNS)} FROM {TABLE} WHERE position > %s ORDER BY position LIMIT %s"


class TelemetryLog:
    """Open with `TelemetryLog.open(config)`; thread-safe; `close()` when done."""

    def __init__(self, backend: _SQLite | _Postgres):
        self._db = backend
        self._commits: GroupCommit[_Append, AppendResult] = GroupCommit(self._write_group)

    @classmethod
    def open(cls, config: EventStoreConfig) -> TelemetryLog:
        if config.kind == "postgres":
            return cls(_Postgres(config.postgres_dsn, pool_size=min(config.pool_size, 8)))
        if config.kind == "sqlite":
            return cls(_SQLite.beside(config.sqlite_path))
        raise ValueError(f"no telemetry log for event store kind {config.kind!r}")

    @property
    def dialect(self) -> str:
        return self._db.dialect

    # --- writing ---------------------------------------------------------------------------------

    def append(self, store_id: str, events: Sequence[Sequence[Any]], received_at_us: int, *,
               rejected: int = 0, flow: bool = True) -> AppendResult:
        """Store the events not stored yet, all or nothing, and count them (and `rejected` others).

        Each event is a tuple of EVENT_COLUMNS values (see `event_row`); `event_id`, `kind` and
        `occurred_at_us` must not be None. De-duplicated on (store_id, event_id), within the batch too.
        Durable when this returns. Concurrent calls share a transaction (group_commit.py).

        `flow=False` for rows the server appends itself (exposures, columns.SERVER_KINDS): they are
        stored and fed like the others but left out of the flow counters, so event-flow health
        (health.py) measures what the storefront delivers and nothing else.
        """
        return self._commits.submit(_Append(str(store_id), events, received_at_us, rejected, 0, flow))

    def record_refused_batch(self, store_id: str, received_at_us: int) -> None:
        """Count a request refused as a whole (it stored nothing)."""
        self._commits.submit(_Append(str(store_id), (), received_at_us, 0, 1))

    def _write_group(self, appends: list[_Append]) -> list[AppendResult]:
        with self._db.writing() as cursor:
            return [self._write(cursor, a) for a in appends]

    def _write(self, cursor, a: _Append) -> AppendResult:
        first: dict[str, Sequence[Any]] = {}
        for event in a.events:
            first.setdefault(event[0], event)
        stored = self._db.existing(cursor, a.store_id, list(first)) if first else set()
        accepted = [event_id for event_id in first if event_id not in stored]
        if accepted:
            cursor.execute(_HEAD)
            head = cursor.fetchone()[0]
            rows = [
                (head + offset, a.store_id, *event[:3], a.received_at_us, *event[3:])
                for offset, event in enumerate((first[event_id] for event_id in accepted), start=1)
            ]
            self._db.insert(cursor, rows)
        if a.flow:
            _count(self._db, cursor, a.store_id, a.received_at_us, len(accepted), len(a.events) - len(accepted),
                   a.rejected, a.refused_batches)
        return AppendResult(accepted=accepted, duplicates=_duplicates(a.events, set(accepted)))

    # --- reading ---------------------------------------------------------------------------------

    def read(self, after: int, limit: int) -> list[tuple]:
        """Rows with position > after, ascending, as tuples in TELEMETRY_COLUMNS order."""
        with self._db.reading() as cursor:
            cursor.execute(self._db.sql(_READ), (after, limit))
            return [tuple(row) for row in cursor.fetchall()]

    def head(self) -> int:
        """The highest position (0 when empty)."""
        with self._db.reading() as cursor:
            cursor.execute(_HEAD)
            return cursor.fetchone()[0]

    def flow(self, store_id: str, from_minute: int, to_minute: int) -> list[FlowMinute]:
        """The store's counters for minutes in [from_minute, to_minute), minutes without any left out."""
        with self._db.reading() as cursor:
            cursor.execute(self._db.sql(
                f"SELECT minute, accepted, duplicates, rejected, refused_batches FROM {FLOW_TABLE} "
                "WHERE store_id = %s AND minute >= %s AND minute < %s ORDER BY minute"), (str(store_id), from_minute, to_minute))
            return [FlowMinute(*row) for row in cursor.fetchall()]

    def accepted_by_hour_of_day(self, store_id: str, from_minute: int, to_minute: int) -> dict[int, int]:
        """Accepted events in [from_minute, to_minute) by UTC hour of day (0–23): the traffic baseline."""
        by_hour: dict[int, int] = {}
        with self._db.reading() as cursor:
            cursor.execute(self._db.sql(
                f"SELECT minute / 60, SUM(accepted) FROM {FLOW_TABLE} "
                "WHERE store_id = %s AND minute >= %s AND minute < %s GROUP BY minute / 60"),
                (str(store_id), from_minute, to_minute))
            for hour, total in cursor.fetchall():
                by_hour[int(hour) % 24] = by_hour.get(int(hour) % 24, 0) + int(total)
        return by_hour

    def totals(self, store_id: str | None = None) -> list[FlowTotals]:
        """All-time counters of one store, or of every store that ever sent events."""
        sql = (f"SELECT store_id, accepted, duplicates, rejected, refused_batches, first_minute, last_accepted_at_us "
               f"FROM {TOTALS_TABLE}")
        with self._db.reading() as cursor:
            if store_id is None:
                cursor.execute(sql + " ORDER BY store_id")
            else:
                cursor.execute(self._db.sql(sql + " WHERE store_id = %s"), (str(store_id),))
            return [FlowTotals(*row) for row in cursor.fetchall()]

    def close(self) -> None:
        self._db.close()


def event_row(**values: Any) -> tuple:
    """An event for `append` from its columns by name (absent: NULL)."""
    unknown = set(values) - set(EVENT_COLUMNS)
    if unknown:
        raise ValueError(f"not event columns: {sorted(unknown)}")
    return tuple(values.get(c) for c in EVENT_COLUMNS)


# append's row layout: position, store_id, event_id, kind, occurred_at_us, received_at_us, then the rest in order.
assert TELEMETRY_COLUMNS[:6] == ("position", "store_id", "event_id", "kind", "occurred_at_us", "received_at_us")  # noqa: S101
assert EVENT_COLUMNS[:3] == ("event_id", "kind", "occurred_at_us")  # noqa: S101


def _duplicates(events: Sequence[Sequence[Any]], accepted: set[str]) -> list[str]:
    """Every event not stored by this call, in input order (a repeated id's first copy was stored)."""
    duplicates, taken = [], set()
    for event in events:
        event_id = event[0]
        if event_id in accepted and event_id not in taken:
            taken.add(event_id)
        else:
            duplicates.append(event_id)
    return duplicates


def _count(db, cursor, store_id: str, received_at_us: int, accepted: int, duplicates: int, rejected: int,
           refused_batches: int) -> None:
    minute = received_at_us // US_PER_MINUTE
    cursor.execute(db.sql(_COUNT_MINUTE), (store_id, minute, accepted, duplicates, rejected, refused_batches))
    cursor.execute(db.sql(_COUNT_TOTAL), (
        store_id, accepted, duplicates, rejected, refused_batches,
        minute if accepted else None, received_at_us if accepted else None,
    ))


# --- the two databases -----------------------------------------------------------------------------


class _SQLite:
    """One connection for writing, whichever thread writes (its page cache stays warm: a connection's
    cache is dropped whenever another connection has written), one per thread for reading. Writers
    of this process take turns on a lock; other processes wait in BEGIN IMMEDIATE."""

    dialect = "sqlite"

    def __init__(self, path: str, *, owned_dir: str | None = None):
        self.path = path
        self._owned_dir = owned_dir  # a temporary directory to delete on close (in-memory event stores)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._writer = self._connect()
        with self.writing() as cursor:
            for statement in _table_sql("sqlite"):
                cursor.execute(statement)

    @classmethod
    def beside(cls, event_store_path: str) -> _SQLite:
        if event_store_path == ":memory:":
            # Connections of one process share nothing in memory; a throw-away file behaves like the real one.
            directory = tempfile.mkdtemp(prefix="trafi-telemetry-")
            return cls(str(Path(directory) / SQLITE_FILE), owned_dir=directory)
        directory = Path(event_store_path).parent
        directory.mkdir(parents=True, exist_ok=True)
        return cls(str(directory / SQLITE_FILE))

    @staticmethod
    def sql(statement: str) -> str:
        return statement.replace("%s", "?")

    def _connect(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise RuntimeError("the telemetry log is closed")
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # the WAL is synced at every commit: acknowledged = on disk
            self._connections.append(conn)
        return conn

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Cursor]:
        with self._write_lock:
            conn = self._writer
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Cursor]:
        cursor = self._connection().cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def insert(self, cursor: sqlite3.Cursor, rows: list[tuple]) -> None:
        cursor.executemany(self.sql(_INSERT), rows)

    def existing(self, cursor: sqlite3.Cursor, store_id: str, event_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(event_ids), 500):  # well under SQLite's bound-variable limit
            chunk = event_ids[start:start + 500]
            cursor.execute(f"SELECT event_id FROM {TABLE} WHERE store_id = ? AND event_id IN "
                           f"({', '.join('?' * len(chunk))})", (store_id, *chunk))
            found.update(row[0] for row in cursor.fetchall())
        return found

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()
        if self._owned_dir:
            shutil.rmtree(self._owned_dir, ignore_errors=True)


class _Postgres:
    dialect = "postgres"

    def __init__(self, dsn: str, *, pool_size: int):
        from psycopg_pool import ConnectionPool

        self._pool = ConnectionPool(dsn, min_size=1, max_size=max(2, pool_size), open=True)
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            # Several API processes starting together would collide creating the same tables.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _table_sql("postgres"):
                cursor.execute(statement)

    @staticmethod
    def sql(statement: str) -> str:
        return statement

    @contextmanager
    def writing(self):
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            # EXCLUSIVE blocks other writers of this table only (plain SELECTs go on): positions are
            # issued and committed one writer at a time, so they appear to readers in order.
            # The de-duplication probe must use the unique index even before the table has statistics:
            # a sequential scan per batch of a table that grows by thousands of rows a second never ends well.
            cursor.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE; SET LOCAL enable_seqscan = off")
            yield cursor

    @contextmanager
    def reading(self):
        with self._pool.connection() as conn, conn.cursor() as cursor:
            yield cursor

    def insert(self, cursor, rows: list[tuple]) -> None:
        with cursor.copy(_COPY) as copy:  # half the time of executemany for a batch of 100
            for row in rows:
                copy.write_row(row)

    def existing(self, cursor, store_id: str, event_ids: list[str]) -> set[str]:
        cursor.execute(f"SELECT event_id FROM {TABLE} WHERE store_id = %s AND event_id = ANY(%s)", (store_id, event_ids))
        return {row[0] for row in cursor.fetchall()}

    def close(self) -> None:
        self._pool.close()
