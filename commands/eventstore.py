"""Event-store adapters: what Trafi adds to the eventsourcing library's recorders.

Two additions, both about round trips on the hot path:

* `select_events_of(ids)`: load the events of several aggregates in ONE query
  (checkout needs the cart, the store, every product and stock item it touches).
* On PostgreSQL, a save is BEGIN, LOCK, one INSERT … SELECT FROM unnest(…), COMMIT.
  The library's default path adds a `SET LOCAL lock_timeout` (redundant when the
  timeout is 0), a separate NOTIFY and one INSERT per event; here the NOTIFY rides
  inside the INSERT (pg_notify in a CTE) and all rows go in one statement.
  The EXCLUSIVE table lock stays: it is what keeps the notification log gap-free
  for readers (see ARCHITECTURE.md; `POSTGRES_ENABLE_DB_FUNCTIONS` stays off).
"""

from __future__ import annotations

from typing import Any, Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent, Transcoding
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from domain.personal import PersonalData


class PersonalDataAsDict(Transcoding):
    """The single serialisation point of personal data (where per-subject encryption plugs in)."""

    type = PersonalData
    name = "personal_data"

    def encode(self, obj: PersonalData) -> dict:
        return {"subject_id": obj.subject_id, "value": obj.value}

    def decode(self, data: dict) -> PersonalData:
        return PersonalData(subject_id=data["subject_id"], value=data["value"])


# A stored event together with its position in the notification log.
PositionedEvent = tuple[StoredEvent, int]


class TrafiPostgresApplicationRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        table = SQL("{0}.{1}").format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        lock = SQL("LOCK TABLE {0} IN EXCLUSIVE MODE").format(table)
        if self.datastore.lock_timeout:
            self.lock_table_statements = [self.lock_table_statements[0], lock]
        else:
            self.lock_table_statements = [lock]
        self._insert_unnest = SQL(
            "WITH notified AS (SELECT pg_notify({channel}, '')) "
            "INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) "
            "AS e(originator_id, originator_version, topic, state) CROSS JOIN notified "
            "RETURNING notification_id"
        ).format(channel=self.channel_name, table=table)
        self._select_many = SQL(
            "SELECT originator_id, originator_version, topic, state, notification_id FROM {0} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(table)

    def _insert_stored_events(self, curs, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        self._lock_table(curs)
        curs.execute(
            self._insert_unnest,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )

    def _fetch_ids_after_insert_events(self, curs, stored_events, **kwargs: Any) -> Sequence[int]:
        # Rows of one INSERT get their bigserial values in row order.
        return sorted(row["notification_id"] for row in curs.fetchall())

    def select_events_of(self, ids: Sequence[UUID]) -> list[PositionedEvent]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_many, (list(ids),), prepare=True)
            return [
                (StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])), r["notification_id"])
                for r in curs.fetchall()
            ]


class TrafiSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def select_events_of(self, ids: Sequence[UUID]) -> list[PositionedEvent]:
        placeholders = ",".join("?" * len(ids))
        statement = (
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "
            f"WHERE originator_id IN ({placeholders}) ORDER BY originator_id, originator_version"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, [i.hex for i in ids])
            return [
                (StoredEvent(UUID(r["originator_id"]), r["originator_version"], r["topic"], r["state"]), r["rowid"])
                for r in c.fetchall()
            ]
