"""The row buffer writes exactly what the same operations written one statement at a time would."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.config import EventStoreConfig
from projections.views import ViewStore

KEYS = st.sampled_from(["a", "b", "c", "d"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), KEYS, st.integers(0, 9), st.integers(-5, 5)),
        st.tuples(st.just("update"), KEYS, st.one_of(st.none(), st.integers(0, 9)), st.integers(-5, 5)),
        st.tuples(st.just("upsert"), KEYS, st.one_of(st.none(), st.integers(0, 9)), st.integers(-5, 5)),
        st.tuples(st.just("sql"), KEYS, st.integers(0, 9), st.just(0)),
    ),
    max_size=25,
)


def setup(tx, table: str) -> None:
    tx.execute(f"DROP TABLE IF EXISTS {table}")
    tx.execute(f"CREATE TABLE {table} (k TEXT PRIMARY KEY, label BIGINT, total BIGINT NOT NULL)")


def one_statement_each(tx, table: str, ops) -> None:
    """The reference: every operation as the SQL it stands for, in order."""
    present = {r[0] for r in tx.execute(f"SELECT k FROM {table}").fetchall()}
    for op, key, label, amount in ops:
        if op == "insert":
            if key in present:
                continue
            tx.execute(f"INSERT INTO {table} (k, label, total) VALUES (%s, %s, %s)", (key, label, amount))
            present.add(key)
        elif op == "update":
            sets = "label = %s, " if label is not None else ""
            params = ((label,) if label is not None else ()) + (amount, key)
            tx.execute(f"UPDATE {table} SET {sets}total = total + %s WHERE k = %s", params)
        elif op == "upsert":
            cols, vals = ("k, label, total", (key, label, amount)) if label is not None else ("k, total", (key, amount))
            sets = "label = excluded.label, " if label is not None else ""
            tx.execute(
                f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(vals))}) "
                f"ON CONFLICT (k) DO UPDATE SET {sets}total = {table}.total + excluded.total", vals
            )
            present.add(key)
        else:
            tx.execute(f"UPDATE {table} SET label = %s WHERE k = %s", (label, key))


def buffered(tx, table: str, ops) -> None:
    present = {r[0] for r in tx.execute(f"SELECT k FROM {table}").fetchall()}
    for op, key, label, amount in ops:
        sets = {"label": label} if label is not None else {}
        if op == "insert":
            if key in present:
                continue
            tx.insert(table, {"k": key, "label": label, "total": amount})
            present.add(key)
        elif op == "update":
            tx.update(table, {"k": key}, set=sets, add={"total": amount})
        elif op == "upsert":
            tx.upsert(table, {"k": key}, set=sets, add={"total": amount})
            present.add(key)
        else:
            tx.execute(f"UPDATE {table} SET label = %s WHERE k = %s", (label, key))


def compare(views: ViewStore, before, ops) -> None:
    results = []
    for table, write in (("rb_reference", one_statement_each), ("rb_buffered", buffered)):
        with views.transaction() as tx:
            setup(tx, table)
            one_statement_each(tx, table, before)  # rows that exist before the batch
        with views.transaction() as tx:
            write(tx, table, ops)
        with views.read() as tx:
            results.append(tx.execute(f"SELECT k, label, total FROM {table} ORDER BY k").fetchall())
    assert results[0] == results[1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=OPS, ops=OPS)
def test_buffered_rows_equal_statement_by_statement_on_sqlite(tmp_path, before, ops):
    views = ViewStore(EventStoreConfig(kind="sqlite", sqlite_path=str(tmp_path / "rb.sqlite")))
    try:
        compare(views, before, ops)
    finally:
        views.close()


def test_buffered_rows_equal_statement_by_statement_on_postgres(app):
    views = ViewStore(app.config)
    before = [("insert", "a", 1, 1), ("insert", "b", 2, 2)]
    ops = [
        ("update", "a", 5, 1), ("insert", "c", 3, 3), ("update", "c", None, 4), ("upsert", "d", 7, 1),
        ("upsert", "d", None, 2), ("update", "b", None, -1), ("sql", "a", 9, 0), ("update", "a", None, 10),
        ("upsert", "b", 4, 1), ("update", "zz", 1, 1),
    ]
    try:
        compare(views, before, ops)
    finally:
        views.close()


def test_an_order_life_in_one_batch_is_one_insert(tmp_path):
    sent = []
    views = ViewStore(EventStoreConfig(kind="sqlite", sqlite_path=str(tmp_path / "rb.sqlite")))
    with views.transaction() as tx:
        setup(tx, "rb_orders")
        tx._executemany_now = lambda sql, rows, real=tx._executemany_now: (sent.append((sql, len(rows))), real(sql, rows))
        tx._rows._execute_many = tx._executemany_now
        for n in range(100):
            tx.insert("rb_orders", {"k": f"o{n}", "label": 0, "total": 0})
            tx.update("rb_orders", {"k": f"o{n}"}, set={"label": 1})
            tx.update("rb_orders", {"k": f"o{n}"}, set={"label": 2}, add={"total": 5})
    assert sent == [("INSERT INTO rb_orders (k, label, total) VALUES (%s, %s, %s)", 100)]
    with views.read() as tx:
        assert tx.execute("SELECT count(*), sum(total), min(label) FROM rb_orders").fetchone() == (100, 500, 2)
    views.close()
