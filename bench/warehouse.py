"""Warehouse benchmark (issue 7): ingestion, warehouse load, the funnel over 10 M events, one minute's update.

    PYTHONPATH=. python bench/warehouse.py                        # about 5 minutes, ~6 GB of RAM at peak
    PYTHONPATH=. python bench/warehouse.py --events 1000000 --load-events 300000 --ingest-seconds 4   # quick look

Progress goes to stderr; stdout is ONE JSON line. Every figure stands beside its baseline and the ratio.

1. `ingest_events_per_s`: bench/ingest.py `measure_ingest` — storefront events accepted durably
   through POST /v1/events (uvicorn subprocess, SQLite telemetry log), against an accept-only route.
2. `warehouse_load_events_per_s`: `--load-events` telemetry rows (tuples in TELEMETRY_COLUMNS order,
   made beforehand, in memory) through `WarehouseFeeder.feed_telemetry` into a fresh DuckDB file:
   transpose, Arrow, every derivation and incremental aggregate in SQL, one transaction per batch of
   `--batch` rows with its position. Baseline: the same rows, transposed to Arrow the same way and
   inserted into a plain table with the same columns, one transaction per batch — nothing derived.
   `warehouse_load_from_log_events_per_s` is the same load read from the real telemetry log (SQLite).
3. `funnel_query_ms_10m`: `--events` storefront events over `--days` days (visitors with a returning
   share, devices, countries, sources, a realistic funnel: about 6 events per visitor-day) written
   straight into the warehouse as Arrow, the derived tables built from them in SQL as the feeder
   defines them; then the API's query functions (autopilot/warehouse/queries.py), median of 7 runs
   after a warm-up: the funnel with a device filter (a scan of visitor_days: the heavier path,
   reported as the figure), the unfiltered funnel (the incremental day sums), a step's breakdown by
   device, and the overview. Baseline: `SELECT count(*) FROM events` over the same events.
4. `incremental_update_ms`: on top of those events, `--minutes` consecutive minutes of traffic of
   `--per-minute` events each (a busy store: 2,000 a minute), each fed as one batch through the
   feeder; median (and p95, max) of the whole batch apply, commit included. Baseline: the same rows
   into a plain table, one transaction.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from autopilot.telemetry.columns import TELEMETRY_COLUMNS  # noqa: E402
from autopilot.warehouse.feeder import WarehouseFeeder  # noqa: E402
from autopilot.warehouse.queries import Filters, Window, funnel, funnel_breakdown, overview  # noqa: E402
from autopilot.warehouse.storefront import telemetry_table  # noqa: E402
from autopilot.warehouse.store import Warehouse  # noqa: E402
from bench.common import logger, pctl, r  # noqa: E402

log = logger("warehouse")
STORE = "0b5e2c7a-1d3f-5a4e-8b9c-6d7e8f9a0b1c"
END = date(2026, 11, 20)
# P(furthest step ≥ k) of a visitor-day, k = visit … complete (a typical store: 2.4 % convert).
REACH = np.array([1.0, 0.62, 0.16, 0.075, 0.055, 0.04, 0.024])
DEVICES, DEVICE_P = np.array(["mobile", "desktop", "tablet"]), [0.62, 0.33, 0.05]
COUNTRIES, COUNTRY_P = np.array(["DE", "FR", "NL", "AT", "IT", "ES"]), [0.4, 0.2, 0.12, 0.1, 0.1, 0.08]
SOURCES, SOURCE_P = np.array(["direct", "google.com", "newsletter", "instagram", "bing.com"]), [0.35, 0.35, 0.1, 0.15, 0.05]
KIND_OF_STEP = np.array(["page_view", "product_view", "add_to_cart", "checkout_start", "checkout_step", "checkout_step",
                         "checkout_complete"])
EXTRA_PAGE_VIEWS = 4.0  # mean extra page views per visitor-day: about 6 events per visitor-day in all
US_PER_DAY = 86_400_000_000


class RowsSource:
    """Telemetry rows already in memory, read as the telemetry log is (`read(after, limit)`, `head()`)."""

    def __init__(self, rows: list[tuple], first_position: int = 1):
        self.rows, self.first = rows, first_position

    def read(self, after: int, limit: int) -> list[tuple]:
        start = max(0, after + 1 - self.first)
        return self.rows[start:start + limit]

    def head(self) -> int:
        return self.first + len(self.rows) - 1


# --- synthetic traffic ---------------------------------------------------------------------------------


def _epoch_us(day: date) -> int:
    return int((datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
                - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1))


def traffic(rng: np.random.Generator, events: int, day: date, first_visitor: int, pool: int, *,
            start_us: int | None = None, span_us: int = US_PER_DAY, first_position: int = 1) -> dict[str, np.ndarray]:
    """About `events` storefront events of one day (or of `span_us` from `start_us`) as numpy columns.

    Visitors are drawn from ids [first_visitor - pool, first_visitor + new): 30 % returning.
    """
    visitor_days = max(1, round(events / (1 + REACH[1:].sum() + EXTRA_PAGE_VIEWS)))
    returning = rng.random(visitor_days) < 0.3
    visitor = np.where(returning, rng.integers(max(0, first_visitor - pool), max(1, first_visitor), visitor_days),
                       first_visitor + np.arange(visitor_days))
    top = (rng.random(visitor_days)[:, None] < REACH[None, :]).cumprod(axis=1).sum(axis=1) - 1  # furthest step
    per_visit = top + 1 + rng.poisson(EXTRA_PAGE_VIEWS, visitor_days)
    owner = np.repeat(np.arange(visitor_days), per_visit)
    index = np.arange(len(owner)) - np.repeat(np.cumsum(per_visit) - per_visit, per_visit)  # 0.. within the visit
    step = np.where(index <= top[owner], index, 0)  # steps in order, then further page views
    start = (start_us if start_us is not None else _epoch_us(day)) + rng.integers(0, span_us, visitor_days)
    occurred = start[owner] + index * 40_000_000
    n = len(owner)
    device = DEVICES[rng.choice(3, visitor_days, p=DEVICE_P)][owner]
    country = COUNTRIES[rng.choice(6, visitor_days, p=COUNTRY_P)][owner]
    source = SOURCES[rng.choice(5, visitor_days, p=SOURCE_P)][owner]
    product = np.char.add("p-", rng.integers(0, 400, n).astype(str))
    visitor_ids = np.char.add("v-", visitor[owner].astype(str))
    return {
        "position": first_position + np.arange(n), "event_id": np.char.add("e-", (first_position + np.arange(n)).astype(str)),
        "kind": KIND_OF_STEP[step], "step": step, "occurred_at_us": occurred, "visitor_id": visitor_ids,
        "session_id": np.char.add(visitor_ids, np.char.add("-", (start // US_PER_DAY).astype(str))[owner]),
        "device": device, "country": country, "traffic_source": source,
        "product_id": np.where(step == 1, product, None),
        "checkout_step": np.where(step == 4, "shipping", np.where(step == 5, "payment", None)),
        "url": np.where(step == 0, "https://shop.example/", None), "visitors_new": visitor_days - int(returning.sum()),
    }


def as_rows(columns: dict[str, np.ndarray], received_at_us: int) -> list[tuple]:
    """The columns as telemetry rows (tuples in TELEMETRY_COLUMNS order), as TelemetryLog.read returns them."""
    n = len(columns["position"])
    none = [None] * n
    by_name = {
        "position": columns["position"].tolist(), "store_id": [STORE] * n, "event_id": columns["event_id"].tolist(),
        "kind": columns["kind"].tolist(), "occurred_at_us": columns["occurred_at_us"].tolist(),
        "received_at_us": [received_at_us] * n, "session_id": columns["session_id"].tolist(),
        "visitor_id": columns["visitor_id"].tolist(), "device": columns["device"].tolist(),
        "country": columns["country"].tolist(), "traffic_source": columns["traffic_source"].tolist(),
        "url": columns["url"].tolist(), "product_id": columns["product_id"].tolist(),
        "checkout_step": columns["checkout_step"].tolist(),
    }
    return list(zip(*(by_name.get(name, none) for name in TELEMETRY_COLUMNS)))


def events_table(columns: dict[str, np.ndarray]) -> pa.Table:
    """The columns as rows of the warehouse's `events` table."""
    n = len(columns["position"])
    occurred = pa.array(columns["occurred_at_us"], pa.int64()).cast(pa.timestamp("us"))
    return pa.table({
        "store_id": pa.array(np.full(n, STORE, dtype=object), pa.string()),
        "event_id": pa.array(columns["event_id"], pa.string()), "source": pa.array(np.full(n, "telemetry", dtype=object)),
        "position": pa.array(columns["position"], pa.int64()), "kind": pa.array(columns["kind"], pa.string()),
        "occurred_at": occurred, "day": occurred.cast(pa.date32()),
        "funnel_step": pa.array(columns["step"], pa.int8()), "visitor_id": pa.array(columns["visitor_id"], pa.string()),
        "session_id": pa.array(columns["session_id"], pa.string()), "device": pa.array(columns["device"], pa.string()),
        "country": pa.array(columns["country"], pa.string()),
        "traffic_source": pa.array(columns["traffic_source"], pa.string()),
        "product_id": pa.array(columns["product_id"], pa.string()), "url": pa.array(columns["url"], pa.string()),
    })


# --- 1. ingestion ------------------------------------------------------------------------------------


def measure_ingestion(seconds: float) -> dict:
    from bench.ingest import measure_ingest

    log(f"ingestion: POST /v1/events for {seconds:.0f} s per mode")
    figures = measure_ingest(seconds=seconds, clients=8, batch=100)
    return {"ingest_events_per_s": figures["ingest_events_per_s"],
            "ingest_baseline_accept_only_events_per_s": figures["baseline_accept_only_per_s"],
            "ingest_ratio": figures["ingest_vs_baseline"], "ingest_p95_ms": figures["ingest_p95_ms"]}


# --- 2. warehouse load -------------------------------------------------------------------------------


def load_rows(count: int, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    rows, position, visitor, day = [], 1, 1, END - timedelta(days=6)
    per_day = count // 7 + 1
    while len(rows) < count:
        columns = traffic(rng, per_day, day, visitor, pool=visitor, first_position=position)
        rows.extend(as_rows(columns, _epoch_us(day)))
        position, visitor, day = position + len(columns["position"]), visitor + columns["visitors_new"], day + timedelta(days=1)
    return rows[:count]


def plain_insert(warehouse: Warehouse, rows: list[tuple], batch: int) -> None:
    with warehouse.writing() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS plain AS SELECT * FROM events LIMIT 0")
    for start in range(0, len(rows), batch):
        table = telemetry_table(rows[start:start + batch])
        with warehouse.writing() as cur:
            cur.register("b", table)
            cur.execute("INSERT INTO plain BY NAME SELECT store_id, event_id, 'telemetry' AS source, position, kind, "
                        "make_timestamp(occurred_at_us) AS occurred_at, CAST(make_timestamp(occurred_at_us) AS DATE) AS day,"
                        " visitor_id, session_id, customer_id, device, country, traffic_source, product_id, sku, "
                        "quantity, currency, order_id, properties, url, referrer, variant FROM b")
            cur.unregister("b")


def measure_load(count: int, batch: int, directory: str) -> dict:
    log(f"warehouse load: making {count:,} telemetry rows")
    rows = load_rows(count, seed=11)
    baseline_wh = Warehouse(os.path.join(directory, "baseline.duckdb"))
    started = time.perf_counter()
    plain_insert(baseline_wh, rows, batch)
    baseline_s = time.perf_counter() - started
    baseline_wh.close()
    log(f"  baseline (bare Arrow insert): {count / baseline_s:,.0f} rows/s")

    warehouse = Warehouse(os.path.join(directory, "load.duckdb"))
    feeder = WarehouseFeeder(warehouse, telemetry=RowsSource(rows), telemetry_batch=batch)
    started = time.perf_counter()
    loaded = feeder.catch_up()
    load_s = time.perf_counter() - started
    assert loaded == count and warehouse.position("telemetry") == count
    with warehouse.reading() as cur:
        visitor_days = cur.execute("SELECT count(*) FROM visitor_days").fetchall()[0][0]
    warehouse.close()
    log(f"  feeder: {count / load_s:,.0f} events/s ({visitor_days:,} visitor-days)")
    figures = {"warehouse_load_events_per_s": round(count / load_s),
               "warehouse_load_baseline_arrow_insert_per_s": round(count / baseline_s),
               "warehouse_load_ratio": r(baseline_s / load_s, 3), "warehouse_load_events": count,
               "warehouse_load_batch": batch}
    figures.update(measure_load_from_log(rows[: min(count, 300_000)], batch, directory))
    return figures


def measure_load_from_log(rows: list[tuple], batch: int, directory: str) -> dict:
    """The same feeder reading the real telemetry log (SQLite), rows appended to it beforehand."""
    from autopilot.telemetry.log import EVENT_COLUMNS, TelemetryLog
    from commands.config import EventStoreConfig

    telemetry = TelemetryLog.open(EventStoreConfig(kind="sqlite", sqlite_path=os.path.join(directory, "events.sqlite")))
    keep = [TELEMETRY_COLUMNS.index(c) for c in EVENT_COLUMNS]
    log(f"  appending {len(rows):,} rows to a SQLite telemetry log")
    for start in range(0, len(rows), 5_000):
        chunk = rows[start:start + 5_000]
        telemetry.append(STORE, [tuple(row[i] for i in keep) for row in chunk], received_at_us=chunk[0][5])
    warehouse = Warehouse(os.path.join(directory, "from_log.duckdb"))
    started = time.perf_counter()
    feeder = WarehouseFeeder(warehouse, telemetry=telemetry, telemetry_batch=batch)
    loaded = feeder.catch_up()
    seconds = time.perf_counter() - started
    warehouse.close()
    telemetry.close()
    log(f"  feeder from the telemetry log: {loaded / seconds:,.0f} events/s")
    return {"warehouse_load_from_log_events_per_s": round(loaded / seconds), "warehouse_load_from_log_events": loaded}


# --- 3. the funnel over 10 M events ------------------------------------------------------------------

DERIVE = [
    # The feeder's definitions (aggregates.py), applied to the whole history at once.
    """INSERT INTO visitor_days BY NAME
       SELECT store_id, day, visitor_id, md5_number(store_id || '/' || visitor_id) AS visitor_key,
              max(funnel_step) AS max_step,
              arg_min(device, occurred_at) AS device, min(occurred_at) AS device_at,
              arg_min(country, occurred_at) AS country, min(occurred_at) AS country_at,
              arg_min(traffic_source, occurred_at) AS traffic_source, min(occurred_at) AS traffic_source_at,
              false AS is_returning
       FROM events GROUP BY store_id, day, visitor_id ORDER BY day""",
    """INSERT INTO visitors BY NAME
       SELECT store_id, visitor_id, md5_number(store_id || '/' || visitor_id) AS visitor_key,
              min(occurred_at) AS first_seen_at, max(occurred_at) AS last_seen_at,
              arg_min(device, occurred_at) AS device, min(occurred_at) AS device_at,
              arg_min(country, occurred_at) AS country, min(occurred_at) AS country_at,
              arg_min(traffic_source, occurred_at) AS traffic_source, min(occurred_at) AS traffic_source_at
       FROM events GROUP BY store_id, visitor_id""",
    """UPDATE visitor_days SET is_returning = true FROM visitors v
       WHERE visitor_days.visitor_id = v.visitor_id AND visitor_days.day > CAST(v.first_seen_at AS DATE)""",
    """INSERT INTO sessions BY NAME
       SELECT store_id, session_id, md5_number(store_id || '/' || session_id) AS session_key,
              min(visitor_id) AS visitor_id, min(occurred_at) AS started_at,
              max(occurred_at) AS last_seen_at, max(funnel_step) AS max_step, count(*) AS events,
              arg_min(device, occurred_at) AS device, min(occurred_at) AS device_at,
              arg_min(country, occurred_at) AS country, min(occurred_at) AS country_at,
              arg_min(traffic_source, occurred_at) AS traffic_source, min(occurred_at) AS traffic_source_at
       FROM events GROUP BY store_id, session_id ORDER BY started_at""",
    """INSERT INTO funnel_by_period BY NAME
       SELECT store_id, grain, period_start, step, count(*) AS visitors FROM (
           SELECT store_id, grain, CASE grain WHEN 'day' THEN day WHEN 'week' THEN CAST(date_trunc('week', day) AS DATE)
                  ELSE CAST(date_trunc('month', day) AS DATE) END AS period_start, visitor_id, max(max_step) AS max_step
           FROM visitor_days CROSS JOIN (VALUES ('day'), ('week'), ('month')) g(grain) GROUP BY ALL), range(0, 7) s(step)
       WHERE max_step >= step GROUP BY ALL""",
    """INSERT INTO metrics_by_period BY NAME
       SELECT store_id, grain, period_start, sum(sessions) AS sessions, sum(page_views) AS page_views, 0 AS carts,
              0 AS carts_checked_out, 0 AS orders, 0 AS revenue_minor, 0 AS gross_profit_minor FROM (
           SELECT store_id, CAST(started_at AS DATE) AS day, 1 AS sessions, 0 AS page_views FROM sessions
           UNION ALL SELECT store_id, day, 0, count(*) FROM events WHERE kind = 'page_view' GROUP BY ALL)
       CROSS JOIN (VALUES ('day'), ('week'), ('month')) g(grain)
       CROSS JOIN LATERAL (SELECT CASE grain WHEN 'day' THEN day WHEN 'week' THEN CAST(date_trunc('week', day) AS DATE)
                                   ELSE CAST(date_trunc('month', day) AS DATE) END AS period_start)
       GROUP BY store_id, grain, period_start""",
    """INSERT INTO product_stats_by_period BY NAME
       SELECT store_id, grain, period_start, product_id, NULL AS category, count(*) AS views, 0 AS add_to_carts,
              0 AS purchases, 0 AS units_sold, 0 AS revenue_minor
       FROM events CROSS JOIN (VALUES ('day'), ('week'), ('month')) g(grain)
       CROSS JOIN LATERAL (SELECT CASE grain WHEN 'day' THEN day WHEN 'week' THEN CAST(date_trunc('week', day) AS DATE)
                                   ELSE CAST(date_trunc('month', day) AS DATE) END AS period_start)
       WHERE kind = 'product_view' GROUP BY ALL""",
]


def build_history(path: str, events: int, days: int) -> tuple[Warehouse, int, int]:
    """`events` storefront events over `days` days, straight into the warehouse; returns (warehouse, events, visitors)."""
    rng = np.random.default_rng(7)
    warehouse = Warehouse(path)
    per_day, position, visitor = events // days, 1, 1
    started = time.perf_counter()
    for i in range(days):
        day = END - timedelta(days=days - 1 - i)
        columns = traffic(rng, per_day, day, visitor, pool=min(visitor, 400_000), first_position=position)
        with warehouse.writing() as cur:
            cur.register("day_events", events_table(columns))
            cur.execute("INSERT INTO events BY NAME SELECT * FROM day_events")
            cur.unregister("day_events")
        position += len(columns["position"])
        visitor += columns["visitors_new"]
        if i % 10 == 9:
            log(f"  {position - 1:,} events, day {i + 1}/{days} ({time.perf_counter() - started:.0f} s)")
    log("  deriving visitor-days, visitors, sessions, reach and the period sums from them")
    with warehouse.writing() as cur:
        for statement in DERIVE:
            cur.execute(statement)
        cur.execute("UPDATE warehouse_positions SET position = ? WHERE source = 'telemetry'", [position - 1])
    warehouse.checkpoint()
    return warehouse, position - 1, visitor - 1


def timed(fn, runs: int = 7) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def measure_queries(warehouse: Warehouse, days: int) -> dict:
    window = Window(END - timedelta(days=29), END)
    year = Window(END - timedelta(days=days - 1), END)

    def query(fn):
        def run():
            with warehouse.reading() as cur:
                return fn(cur)
        return run

    figures = {}
    for name, fn in [
        ("funnel_query_ms_10m", lambda cur: funnel(cur, STORE, year, Filters(device="mobile"))),
        ("funnel_unfiltered_ms_10m", lambda cur: funnel(cur, STORE, year)),
        ("funnel_breakdown_ms_10m", lambda cur: funnel_breakdown(cur, STORE, year, "checkout_start", "device")),
        ("funnel_30_days_filtered_ms_10m", lambda cur: funnel(cur, STORE, window, Filters(country="DE"))),
        ("overview_ms_10m", lambda cur: overview(cur, STORE, window)),
        ("funnel_query_baseline_count_ms_10m", lambda cur: cur.execute("SELECT count(*) FROM events").fetchall()),
    ]:
        median, worst = timed(query(fn))
        figures[name] = r(median)
        log(f"  {name}: {median:.1f} ms (max {worst:.1f})")
    figures["funnel_query_ratio"] = r(figures["funnel_query_ms_10m"] / figures["funnel_query_baseline_count_ms_10m"])
    return figures


# --- 4. one minute of traffic on top ------------------------------------------------------------------


def measure_minutes(warehouse: Warehouse, directory: str, head: int, visitors: int, minutes: int,
                    per_minute: int) -> dict:
    rng = np.random.default_rng(99)
    start = _epoch_us(END) + 20 * 3_600_000_000
    batches, position, visitor = [], head + 1, visitors + 1
    for minute in range(minutes):
        columns = traffic(rng, per_minute, END, visitor, pool=visitors, start_us=start + minute * 60_000_000,
                          span_us=60_000_000, first_position=position)
        rows = as_rows(columns, start + (minute + 1) * 60_000_000)
        batches.append(rows)
        position, visitor = position + len(rows), visitor + columns["visitors_new"]
    source = RowsSource([row for rows in batches for row in rows], first_position=head + 1)
    feeder = WarehouseFeeder(warehouse, telemetry=source, telemetry_batch=10**9)
    applied, sizes = [], []
    for rows in batches:
        source_limit = len(rows)
        feeder.telemetry_batch = source_limit
        started = time.perf_counter()
        assert feeder.feed_telemetry() == source_limit
        applied.append((time.perf_counter() - started) * 1000)
        sizes.append(source_limit)
    baseline_wh = Warehouse(os.path.join(directory, "minute-baseline.duckdb"))
    baseline = []
    for rows in batches:
        started = time.perf_counter()
        plain_insert(baseline_wh, rows, len(rows))
        baseline.append((time.perf_counter() - started) * 1000)
    baseline_wh.close()
    median = statistics.median(applied)
    log(f"  one minute of traffic (~{statistics.mean(sizes):,.0f} events): median {median:.1f} ms, "
        f"max {max(applied):.1f} ms; bare insert {statistics.median(baseline):.1f} ms")
    return {"incremental_update_ms": r(median), "incremental_update_p95_ms": r(pctl(applied, 95)),
            "incremental_update_max_ms": r(max(applied)), "incremental_update_events": round(statistics.mean(sizes)),
            "incremental_update_baseline_insert_ms": r(statistics.median(baseline)),
            "incremental_update_ratio": r(median / statistics.median(baseline))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="storefront events in the warehouse (3, 4)")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--load-events", type=int, default=1_000_000, help="telemetry rows fed for the load rate (2)")
    parser.add_argument("--batch", type=int, default=250_000, help="rows per warehouse batch for the load (2)")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--per-minute", type=int, default=2_000)
    parser.add_argument("--ingest-seconds", type=float, default=10)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()

    figures: dict = {}
    if args.skip_ingest:
        figures["ingest_events_per_s"] = None
    else:
        figures.update(measure_ingestion(args.ingest_seconds))
    with tempfile.TemporaryDirectory(prefix="trafi-bench-warehouse-") as directory:
        figures.update(measure_load(args.load_events, args.batch, directory))
        log(f"the funnel over {args.events:,} events: building the warehouse")
        warehouse, head, visitors = build_history(os.path.join(directory, "history.duckdb"), args.events, args.days)
        with warehouse.reading() as cur:
            counts = {t: cur.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                      for t in ("events", "visitor_days", "visitors", "sessions")}
        log(f"  {counts}")
        figures["warehouse_rows_10m"] = counts
        figures.update(measure_queries(warehouse, args.days))
        figures.update(measure_minutes(warehouse, directory, head, visitors, args.minutes, args.per_minute))
        warehouse.close()
    figures["targets"] = {"ingest_events_per_s": ">= 20000", "warehouse_load_events_per_s": ">= 200000",
                          "funnel_query_ms_10m": "<= 1000", "incremental_update_ms": "<= 100"}
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
