"""Event-store adapters: what Trafi adds to the eventsourcing library's recorders.

Both additions are about round trips on the hot path of every command:

* `select_events_of(ids)` loads several aggregates in ONE query — each from its
  latest snapshot, if it has one, plus the events after it. Checkout needs the
  cart, the store, every product and stock item it touches; hot stock items
  would otherwise be replayed from their first event on every checkout.
* On PostgreSQL a save is ONE statement, `SELECT trafi_insert_trafi_events(…)`, run in
  autocommit. The function takes the EXCLUSIVE table lock, queues the NOTIFY
  for listening projection runners and inserts every event with `unnest`. The
  lock is what keeps the notification log gap-free for readers (ids are issued
  in commit order); held by a single statement it is released at that
  statement's commit, never across a client round trip. The library's own
  `POSTGRES_ENABLE_DB_FUNCTIONS` path skips the lock, so it stays off.
"""

from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent, Transcoding
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal

from domain.personal import PersonalData


class PersonalDataAsDict(Transcoding):
    """The single serialisation point of personal data (where per-subject encryption plugs in)."""

    type = PersonalData
    name = "personal_data"

    def encode(self, obj: PersonalData) -> dict:
        return {"subject_id": obj.subject_id, "value": obj.value}

    def decode(self, data: dict) -> PersonalData:
        return PersonalData(subject_id=data["subject_id"], value=data["value"])


# A stored event (or snapshot) and its position in the notification log (None for a snapshot).
PositionedEvent = tuple[StoredEvent, "int | None"]


class TrafiPostgresApplicationRecorder(PostgresApplicationRecorder):
    snapshots_table_name: str | None = None  # set by the application when snapshotting is on

    def __init__(self, datastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self._table = SQL("{0}.{1}").format(schema, Identifier(self.events_table_name))
        function = SQL("{0}.{1}").format(schema, Identifier(f"trafi_insert_{self.events_table_name}"))
        set_timeout = SQL("SET LOCAL lock_timeout = {0};").format(Literal(f"{self.datastore.lock_timeout}s"))
        self.sql_create_statements.append(SQL(
            "CREATE OR REPLACE FUNCTION {function}(ids uuid[], versions bigint[], topics text[], states bytea[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $body$ BEGIN "
            "{set_timeout} "
            "LOCK TABLE {table} IN EXCLUSIVE MODE; "
            "PERFORM pg_notify({channel}, ''); "
            "RETURN QUERY INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id; "
            "END $body$"
        ).format(
            function=function, table=self._table, channel=Literal(self.channel_name),
            set_timeout=set_timeout if self.datastore.lock_timeout else SQL(""),
        ))
        self._call_insert = SQL("SELECT n FROM {0}(%s, %s, %s, %s) AS n").format(function)
        self._select_many = None

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None or not stored_events:
            return super().insert_events(stored_events, **kwargs)  # process applications: library path
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._call_insert, columns, prepare=True)
            # Rows of one INSERT get their bigserial values in row order.
            return sorted(row["n"] for row in curs.fetchall())

    def select_events_of(self, ids: Sequence[UUID]) -> list[PositionedEvent]:
        if self._select_many is None:  # composed once: the snapshot table is known after construction
            self._select_many = _select_many_sql(self._table, self._snapshots_table(), "= ANY(%s)")
        params = (list(ids), list(ids)) if self.snapshots_table_name else (list(ids),)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_many, params, prepare=True)
            return [
                (StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])), r["position"])
                for r in curs.fetchall()
            ]

    def _snapshots_table(self):
        if not self.snapshots_table_name:
            return None
        return SQL("{0}.{1}").format(Identifier(self.datastore.schema), Identifier(self.snapshots_table_name))


class TrafiSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    snapshots_table_name: str | None = None

    def select_events_of(self, ids: Sequence[UUID]) -> list[PositionedEvent]:
        in_ids = f"IN ({','.join('?' * len(ids))})"
        statement = _select_many_sql(SQL(self.events_table_name), self._snapshots_table(), in_ids).as_string(None)
        # (SQLite has no round trip to save; composing per call costs microseconds.)
        hex_ids = [i.hex for i in ids]
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, hex_ids * 2 if self.snapshots_table_name else hex_ids)
            return [
                (StoredEvent(UUID(r["originator_id"]), r["originator_version"], r["topic"], r["state"]), r["position"])
                for r in c.fetchall()
            ]

    def _snapshots_table(self):
        return SQL(self.snapshots_table_name) if self.snapshots_table_name else None


def _select_many_sql(events, snapshots, id_filter: str) -> SQL:
    """Events of several aggregates, each from its latest snapshot (if any), in stream order.

    Written once for both dialects; only the id filter differs (`= ANY(%s)` / `IN (?, …)`).
    PostgreSQL stores the row position as `notification_id`, SQLite as `rowid`.
    """
    position = "rowid" if id_filter.startswith("IN") else "notification_id"
    if snapshots is None:
        return SQL(
            "SELECT originator_id, originator_version, topic, state, {pos} AS position FROM {events} "
            "WHERE originator_id {ids} ORDER BY originator_id, originator_version"
        ).format(pos=SQL(position), events=events, ids=SQL(id_filter))
    return SQL(
        "WITH latest AS (SELECT originator_id, MAX(originator_version) AS version FROM {snapshots} "
        "  WHERE originator_id {ids} GROUP BY originator_id) "
        "SELECT s.originator_id, s.originator_version, s.topic, s.state, NULL AS position "
        "  FROM {snapshots} s JOIN latest l "
        "  ON s.originator_id = l.originator_id AND s.originator_version = l.version "
        "UNION ALL "
        "SELECT e.originator_id, e.originator_version, e.topic, e.state, e.{pos} AS position "
        "  FROM {events} e LEFT JOIN latest l ON e.originator_id = l.originator_id "
        "  WHERE e.originator_id {ids} AND e.originator_version > COALESCE(l.version, 0) "
        "ORDER BY 1, 2"
    ).format(pos=SQL(position), events=events, snapshots=snapshots, ids=SQL(id_filter))
