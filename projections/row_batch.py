"""A write buffer for a projection's batch: rows merged per key, written with one executemany per shape.

Why: a rebuild replays history in which most rows are inserted and then
updated a few times within the same batch (an order is placed, paid, shipped,
delivered). Sending each of those as its own statement makes the database the
bottleneck. Buffered, an order's whole life in a batch becomes one INSERT, and
the statements left are sent grouped by shape.

Handlers say what they mean:

    tx.insert("rm_orders", {"order_id": id, "status": "pending_payment", "refunded": 0, …})
    tx.update("rm_orders", {"order_id": id}, set={"status": "paid"}, add={"refunded": 100})
    tx.upsert("rm_daily", {"store_id": s, "day": d}, set={"currency": "EUR"}, add={"orders": 1})

The rules that make reordering safe:
* `key` identifies at most one row (a primary key or unique constraint);
* an update of a row inserted in this batch is folded into the insert;
* several updates (or upserts) of one key are merged into one: `set` — last
  value wins, `add` — amounts add up;
* anything that could observe order — raw SQL, a read, an insert of a key that
  has a pending update — first writes everything buffered.
Upsert `add` columns take the added amount as their value when the row is new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

Row = dict[str, Any]


@dataclass
class _Change:
    table: str
    key: Row
    set: Row = field(default_factory=dict)
    add: Row = field(default_factory=dict)
    upsert: bool = False

    def merge(self, set: Row, add: Row) -> None:
        self.set.update(set)
        for column, amount in add.items():
            self.add[column] = self.add.get(column, 0) + amount

    @property
    def shape(self) -> tuple:
        return (self.table, self.upsert, tuple(self.key), tuple(self.set), tuple(self.add))


class RowBatch:
    def __init__(self, execute_many: Callable[[str, list[tuple]], None]):
        self._execute_many = execute_many
        self._inserts: dict[str, list[Row]] = {}
        self._changes: dict[tuple, _Change] = {}  # (table, key columns, key values) → change
        # table → key columns → key values → pending inserted row (built lazily per key shape)
        self._inserted_by_key: dict[str, dict[tuple, dict[tuple, Row]]] = {}

    def insert(self, table: str, row: Row) -> None:
        if any(self._change_key(table, cols, row) in self._changes for cols in self._key_shapes(table)):
            self.flush()  # a pending update of this key must meet the table as it was
        self._inserts.setdefault(table, []).append(row)
        for cols, rows in self._inserted_by_key.get(table, {}).items():
            rows[tuple(row.get(c) for c in cols)] = row

    def update(self, table: str, key: Row, set: Row | None = None, add: Row | None = None) -> None:
        self._change(table, key, set or {}, add or {}, upsert=False)

    def upsert(self, table: str, key: Row, set: Row | None = None, add: Row | None = None) -> None:
        self._change(table, key, set or {}, add or {}, upsert=True)

    def _change(self, table: str, key: Row, set: Row, add: Row, *, upsert: bool) -> None:
        inserted = self._pending_insert(table, key)
        if inserted is not None:
            inserted.update(set)
            for column, amount in add.items():
                inserted[column] = inserted[column] + amount
            return
        change_key = (table, tuple(key), tuple(key.values()))
        pending = self._changes.get(change_key)
        if pending is not None and upsert and not pending.upsert:
            self.flush()  # update-then-upsert of a missing row must not insert the update's values
            pending = None
        if pending is None:
            self._changes[change_key] = pending = _Change(table, dict(key), upsert=upsert)
        pending.merge(set, add)

    def _pending_insert(self, table: str, key: Row) -> Row | None:
        rows = self._inserts.get(table)
        if not rows:
            return None
        cols = tuple(key)
        by_key = self._inserted_by_key.setdefault(table, {})
        if cols not in by_key:
            by_key[cols] = {tuple(row.get(c) for c in cols): row for row in rows}
        return by_key[cols].get(tuple(key.values()))

    def _key_shapes(self, table: str) -> set[tuple]:
        return {cols for (t, cols, _) in self._changes if t == table}

    @staticmethod
    def _change_key(table: str, cols: tuple, row: Row) -> tuple:
        return (table, cols, tuple(row.get(c) for c in cols))

    def flush(self) -> None:
        inserts, changes = self._inserts, self._changes
        self._inserts, self._changes, self._inserted_by_key = {}, {}, {}
        for table, rows in inserts.items():
            by_columns: dict[tuple, list[tuple]] = {}
            for row in rows:
                by_columns.setdefault(tuple(row), []).append(tuple(row.values()))
            for columns, values in by_columns.items():
                self._execute_many(_insert_sql(table, columns), values)
        by_shape: dict[tuple, list[_Change]] = {}
        for change in changes.values():
            by_shape.setdefault(change.shape, []).append(change)
        for shape, group in by_shape.items():
            sample = group[0]
            if sample.upsert:
                values = [(*c.key.values(), *c.set.values(), *c.add.values()) for c in group]
                self._execute_many(_upsert_sql(sample), values)
            else:
                values = [(*c.set.values(), *c.add.values(), *c.key.values()) for c in group]
                self._execute_many(_update_sql(sample), values)


def _insert_sql(table: str, columns: tuple) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"


def _update_sql(change: _Change) -> str:
    assignments = [f"{c} = %s" for c in change.set] + [f"{c} = {c} + %s" for c in change.add]
    where = " AND ".join(f"{c} = %s" for c in change.key)
    return f"UPDATE {change.table} SET {', '.join(assignments)} WHERE {where}"


def _upsert_sql(change: _Change) -> str:
    columns = (*change.key, *change.set, *change.add)
    assignments = [f"{c} = excluded.{c}" for c in change.set]
    assignments += [f"{c} = {change.table}.{c} + excluded.{c}" for c in change.add]
    conflict = f"DO UPDATE SET {', '.join(assignments)}" if assignments else "DO NOTHING"
    return (
        f"INSERT INTO {change.table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(change.key)}) {conflict}"
    )
