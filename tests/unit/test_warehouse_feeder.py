"""The warehouse fed from the real telemetry log (SQLite in tmp_path) into a real DuckDB file.

What is checked: the funnel reach per visitor-day and per week/month, segments from the first
event that has one, returning visitors, sessions — and that every table is the same however the
log was cut into batches or in whatever order the events arrived (so a resumed feeder, or a
rebuild, equals the live warehouse), and that the incremental period sums equal a recount.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autopilot.telemetry.log import TelemetryLog, event_row
from autopilot.warehouse.feeder import WarehouseFeeder
from autopilot.warehouse.schema import FUNNEL_STEPS
from autopilot.warehouse.store import Warehouse
from commands.config import EventStoreConfig

STORE = "5b0e7c1a-3f2d-5e4c-9b8a-7d6c5b4a3f2e"
OTHER_STORE = "6c1f8d2b-4a3e-5f5d-8c9b-8e7d6c5b4a3f"
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
KIND_OF_STEP = {0: "page_view", 1: "product_view", 2: "add_to_cart", 3: "checkout_start", 4: "checkout_step",
                5: "checkout_step", 6: "checkout_complete"}
_ids = itertools.count(1)


def us(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1))


def event(step: int, at: datetime, *, visitor: str | None = "v1", session: str | None = "s1", device=None,
          country=None, source=None, product: str | None = None, event_id: str | None = None) -> tuple:
    """A storefront event at funnel step `step` (EVENT_COLUMNS, as TelemetryLog.append takes it)."""
    kind = KIND_OF_STEP[step]
    return event_row(
        event_id=event_id or f"e{next(_ids)}", kind=kind, occurred_at_us=us(at), session_id=session,
        visitor_id=visitor, device=device, country=country, traffic_source=source, product_id=product,
        checkout_step={4: "shipping", 5: "payment"}.get(step), url="https://shop.example/" if step == 0 else None,
    )


def open_log(tmp_path, name: str = "a") -> TelemetryLog:
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    return TelemetryLog.open(EventStoreConfig(kind="sqlite", sqlite_path=str(directory / "events.sqlite")))


def append(log: TelemetryLog, events: list[tuple], store: str = STORE) -> None:
    if events:
        log.append(store, events, received_at_us=us(MONDAY))


def feed(tmp_path, log: TelemetryLog, name: str = "warehouse", batch: int = 50_000) -> Warehouse:
    warehouse = Warehouse(tmp_path / f"{name}.duckdb")
    WarehouseFeeder(warehouse, telemetry=log, telemetry_batch=batch).catch_up()
    return warehouse


def rows(warehouse: Warehouse, sql: str, params=()) -> list[tuple]:
    with warehouse.reading() as cur:
        return cur.execute(sql, list(params)).fetchall()


# Every table the feeder writes, with its full contents in a canonical order.
TABLES = ("events", "sessions", "visitors", "visitor_days", "exposures", "orders", "order_lines",
          "carts", "products", "funnel_by_period", "metrics_by_period", "product_stats_by_period",
          "warehouse_positions")


def snapshot(warehouse: Warehouse) -> dict[str, list[tuple]]:
    return {table: rows(warehouse, f"SELECT * FROM {table} ORDER BY ALL") for table in TABLES}


# --- reach, segments, sessions ------------------------------------------------------------------------


def test_each_visitor_day_reaches_its_furthest_step_and_periods_count_distinct_visitors(tmp_path):
    log = open_log(tmp_path)
    tuesday = MONDAY + timedelta(days=1)
    append(log, [
        event(0, MONDAY, visitor="v1", session="s1"),
        event(1, MONDAY + timedelta(minutes=1), visitor="v1", session="s1", product="mug"),
        event(2, MONDAY + timedelta(minutes=2), visitor="v1", session="s1", product="mug"),
        event(0, MONDAY + timedelta(minutes=5), visitor="v2", session="s2"),
        event(6, tuesday, visitor="v1", session="s3"),
        event(0, MONDAY, visitor=None, session=None),  # no analytics consent: an event, not a visitor
    ])
    warehouse = feed(tmp_path, log)

    assert rows(warehouse, "SELECT day, visitor_id, max_step, is_returning FROM visitor_days ORDER BY ALL") == [
        (date(2026, 3, 2), "v1", 2, False), (date(2026, 3, 2), "v2", 0, False), (date(2026, 3, 3), "v1", 6, True),
    ]
    day = dict(rows(warehouse, "SELECT step, visitors FROM funnel_by_period WHERE grain = 'day' AND period_start = ?",
                    [date(2026, 3, 2)]))
    assert day == {0: 2, 1: 1, 2: 1}
    # In the week v1's furthest step is complete (Tuesday), v2's a visit: distinct visitors, not visitor-days.
    week = dict(rows(warehouse, "SELECT step, visitors FROM funnel_by_period WHERE grain = 'week'"))
    assert week == {0: 2, **{k: 1 for k in range(1, len(FUNNEL_STEPS))}}
    assert rows(warehouse, "SELECT period_start FROM funnel_by_period WHERE grain = 'month' GROUP BY ALL") == [
        (date(2026, 3, 1),)]
    assert rows(warehouse, "SELECT count(*), count(visitor_id) FROM events") == [(6, 5)]
    assert rows(warehouse, "SELECT period_start, sessions, page_views FROM metrics_by_period WHERE grain = 'day' "
                           "ORDER BY 1") == [(date(2026, 3, 2), 2, 3), (date(2026, 3, 3), 1, 0)]
    assert rows(warehouse, "SELECT product_id, views FROM product_stats_by_period WHERE grain = 'day'") == [("mug", 1)]


def test_segments_come_from_the_first_event_that_has_one_whatever_arrives_first(tmp_path):
    log = open_log(tmp_path)
    append(log, [event(1, MONDAY + timedelta(minutes=10), device="desktop", country="FR", source="google.com")])
    append(log, [event(0, MONDAY + timedelta(minutes=1), device=None, country="DE"),
                 event(2, MONDAY + timedelta(minutes=5), device="mobile")])
    warehouse = feed(tmp_path, log, batch=1)  # one event per batch: each merge against what is stored

    expected = ("mobile", "DE", "google.com")
    assert rows(warehouse, "SELECT device, country, traffic_source FROM visitor_days") == [expected]
    assert rows(warehouse, "SELECT device, country, traffic_source FROM visitors") == [expected]
    assert rows(warehouse, "SELECT device, country, traffic_source, started_at, events, max_step FROM sessions") == [
        (*expected, (MONDAY + timedelta(minutes=1)).replace(tzinfo=None), 3, 2)]


def test_a_late_event_makes_later_days_returning_and_moves_its_session_to_the_day_it_began(tmp_path):
    log = open_log(tmp_path)
    wednesday = MONDAY + timedelta(days=2)
    append(log, [event(0, wednesday, visitor="v1", session="s1")])
    append(log, [event(0, MONDAY + timedelta(hours=14, minutes=59), visitor="v1", session="s1")])  # Monday 23:59
    warehouse = feed(tmp_path, log, batch=1)

    assert rows(warehouse, "SELECT day, is_returning FROM visitor_days ORDER BY day") == [
        (date(2026, 3, 2), False), (date(2026, 3, 4), True)]
    assert rows(warehouse, "SELECT period_start, sessions FROM metrics_by_period WHERE grain = 'day' ORDER BY 1") == [
        (date(2026, 3, 2), 1), (date(2026, 3, 4), 0)]


def test_stores_are_kept_apart(tmp_path):
    log = open_log(tmp_path)
    append(log, [event(3, MONDAY, visitor="same-id")], STORE)
    append(log, [event(0, MONDAY, visitor="same-id")], OTHER_STORE)
    warehouse = feed(tmp_path, log)
    assert rows(warehouse, "SELECT store_id, max_step FROM visitor_days ORDER BY ALL") == sorted(
        [(STORE, 3), (OTHER_STORE, 0)])
    assert rows(warehouse, "SELECT store_id, max(step) FROM funnel_by_period GROUP BY ALL ORDER BY ALL") == sorted(
        [(STORE, 3), (OTHER_STORE, 0)])


def test_a_batch_loaded_twice_is_impossible_the_position_moves_with_it(tmp_path):
    log = open_log(tmp_path)
    append(log, [event(0, MONDAY), event(1, MONDAY)])
    warehouse = feed(tmp_path, log)
    feeder = WarehouseFeeder(warehouse, telemetry=log)
    assert feeder.catch_up() == 0
    assert warehouse.position("telemetry") == log.head() == 2
    assert rows(warehouse, "SELECT count(*) FROM events") == [(2,)]
    append(log, [event(2, MONDAY)])
    assert feeder.lag() == {"telemetry": 1, "commerce": 0}
    assert feeder.catch_up() == 1 and rows(warehouse, "SELECT max(max_step) FROM visitor_days") == [(2,)]


# --- any batching, any arrival order: the same warehouse ------------------------------------------------

visits = st.lists(
    st.tuples(
        st.sampled_from(["v1", "v2", "v3", None]),  # None: without consent
        st.sampled_from(["s1", "s2", "s3"]),
        st.integers(min_value=0, max_value=6),  # step
        st.integers(min_value=0, max_value=60 * 24 * 9),  # minutes after Monday 09:00: two ISO weeks, two months' edge
        st.sampled_from([None, "mobile", "desktop"]),
        st.sampled_from([None, "DE", "FR"]),
        st.sampled_from([None, "p1", "p2"]),
    ),
    min_size=1, max_size=16,
)


def as_events(drawn) -> list[tuple]:
    out = []
    for i, (visitor, session, step, minutes, device, country, product) in enumerate(drawn):
        out.append(event(step, MONDAY + timedelta(minutes=minutes), visitor=visitor,
                         session=None if visitor is None else f"{visitor}-{session}", device=device, country=country,
                         product=product, event_id=f"ev-{i}"))
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(drawn=visits, batch=st.integers(min_value=2, max_value=7), order=st.randoms(use_true_random=False))
def test_any_batching_and_arrival_order_build_the_same_warehouse(tmp_path_factory, drawn, batch, order):
    tmp_path = tmp_path_factory.mktemp("order")
    events = as_events(drawn)
    one_go = open_log(tmp_path, "one_go")
    append(one_go, events)
    shuffled = list(events)
    order.shuffle(shuffled)
    other = open_log(tmp_path, "shuffled")
    append(other, shuffled)

    reference = snapshot(feed(tmp_path, one_go, "reference"))
    in_batches = feed(tmp_path, other, "rebuilt", batch=batch)
    assert_incremental_sums_equal_a_recount(in_batches)
    rebuilt = snapshot(in_batches)
    for table in TABLES:
        if table != "events":  # positions differ with the arrival order; everything else may not
            assert rebuilt[table] == reference[table], table
    assert sorted(r[:3] + r[4:] for r in rebuilt["events"]) == sorted(r[:3] + r[4:] for r in reference["events"])


def assert_incremental_sums_equal_a_recount(warehouse: Warehouse) -> None:
    """Every period table, recounted from scratch over events/visitor_days/sessions, equals what the batches added."""
    recount_reach = """
        WITH furthest AS (
            SELECT store_id, grain, CASE grain WHEN 'day' THEN day WHEN 'week' THEN CAST(date_trunc('week', day) AS DATE)
                   ELSE CAST(date_trunc('month', day) AS DATE) END AS period_start, visitor_id, max(funnel_step) AS top
            FROM events CROSS JOIN (VALUES ('day'), ('week'), ('month')) g(grain)
            WHERE visitor_id IS NOT NULL AND funnel_step IS NOT NULL GROUP BY ALL)
        SELECT store_id, grain, period_start, step, count(*) FROM furthest, range(0, 7) r(step)
        WHERE top >= step GROUP BY ALL ORDER BY ALL"""
    assert rows(warehouse, "SELECT * FROM funnel_by_period WHERE visitors <> 0 ORDER BY ALL") == rows(
        warehouse, recount_reach)
    recount_metrics = """
        SELECT store_id, period_start, sum(sessions), sum(page_views) FROM (
            SELECT store_id, CAST(started_at AS DATE) AS period_start, 1 AS sessions, 0 AS page_views FROM sessions
            UNION ALL SELECT store_id, day, 0, 1 FROM events WHERE kind = 'page_view')
        GROUP BY ALL ORDER BY ALL"""
    assert rows(warehouse, "SELECT store_id, period_start, sessions, page_views FROM metrics_by_period "
                           "WHERE grain = 'day' AND (sessions <> 0 OR page_views <> 0) ORDER BY ALL") == rows(
        warehouse, recount_metrics)
    assert rows(warehouse, "SELECT product_id, sum(views) FROM product_stats_by_period WHERE grain = 'month' "
                           "GROUP BY ALL ORDER BY ALL") == rows(
        warehouse, "SELECT product_id, count(*) FROM events WHERE kind = 'product_view' AND product_id IS NOT NULL "
                   "GROUP BY ALL ORDER BY ALL")
    assert rows(warehouse, "SELECT count(*) FROM visitor_days v JOIN visitors w USING (store_id, visitor_id) "
                           "WHERE v.is_returning <> (v.day > CAST(w.first_seen_at AS DATE))") == [(0,)]


def test_the_recount_check_can_fail(tmp_path):
    log = open_log(tmp_path)
    append(log, [event(2, MONDAY), event(0, MONDAY, visitor="v2")])
    warehouse = feed(tmp_path, log)
    assert_incremental_sums_equal_a_recount(warehouse)
    with warehouse.writing() as cur:
        cur.execute("UPDATE funnel_by_period SET visitors = visitors + 1 WHERE grain = 'week' AND step = 1")
    with pytest.raises(AssertionError):
        assert_incremental_sums_equal_a_recount(warehouse)
