"""What one staged batch adds to the warehouse: events, visitors, reach, sessions and the period sums.

Every step is set-based SQL over `staged` (a temp view or table with the `events` table's
columns) inside the batch's transaction. Of the big tables only what the batch's keys need is
read: visitors and sessions are matched on 128-bit integer keys, visitor-days only from the
earliest week or month the batch touches; nothing is recomputed from `events`.

Merges are order-independent, so the warehouse does not depend on how the logs were cut into
batches or interleaved (a crashed feeder resumed, or a rebuild, ends in the same rows):
* first/last seen: min/max of the event times;
* device, country, traffic source: those of the earliest event that has one (ties: the
  smallest value) — kept as (time, value) and merged with `least`;
* the furthest step: max; is_returning: the visitor's first seen day is before the row's day.
Period sums only ever receive additions; a count that depends on a merged value (sessions by
the day they started) receives -1 at the old day and +1 at the new one when it moves.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Callable

from autopilot.warehouse.schema import GRAINS

Step = Callable[[str], None]  # called between the statements of a batch (tests inject crashes there)
SEGMENTS = ("device", "country", "traffic_source")


def period_start(grain_column: str, day_column: str = "day") -> str:
    """The SQL for the start of the period of `day_column` at the grain named by `grain_column`."""
    return (f"CASE {grain_column} WHEN 'day' THEN {day_column} "
            f"WHEN 'week' THEN CAST(date_trunc('week', {day_column}) AS DATE) "
            f"ELSE CAST(date_trunc('month', {day_column}) AS DATE) END")


def _grains(names: tuple[str, ...]) -> str:
    return "(VALUES " + ", ".join(f"('{g}')" for g in names) + ") AS g(grain)"


def _first(column: str) -> str:
    """Aggregate: the (time, value) of the earliest event with a value of `column`."""
    return f"min({{'at': occurred_at, 'v': {column}}}) FILTER (WHERE {column} IS NOT NULL) AS {column}"


def _kept(column: str, alias: str = "t") -> str:
    """A stored (value, value_at) pair as the (time, value) struct that `least` merges."""
    return f"CASE WHEN {alias}.{column}_at IS NOT NULL THEN {{'at': {alias}.{column}_at, 'v': {alias}.{column}}} END"


def _segment_updates() -> str:
    """The SET of the segments: the earlier of the stored (time, value) and the batch's."""
    return ", ".join(f"{c} = least(n.{c}, {_kept(c)}).v, {c}_at = least(n.{c}, {_kept(c)}).at" for c in SEGMENTS)


def _segment_values() -> tuple[str, ...]:
    return tuple(f"n.{c}.{part}" for c in SEGMENTS for part in ("v", "at"))


def _merge_into(cur, table: str, source: str, on: str, updates: str, columns: tuple[str, ...],
                values: tuple[str, ...], stored: str) -> None:
    """Write the batch's rows into `table`: merged into the stored row when there is one, else inserted.

    `stored` says, on `source`, that the row exists (the lookup that built `source` saw it), so
    new rows are appended without a join, and only the others are matched — on integer keys
    (`on`), which costs a fraction of matching the text ids; the merge expressions read the
    stored values in that same pass.
    """
    cur.execute(f"UPDATE {table} AS t SET {updates} FROM {source} AS n WHERE {stored} AND {on}")
    cur.execute(f"""
        INSERT INTO {table} ({", ".join(columns)})
        SELECT {", ".join(values)} FROM {source} AS n WHERE NOT ({stored})""")


SEGMENT_COLUMNS = tuple(name for c in SEGMENTS for name in (c, f"{c}_at"))
# 128-bit keys of a visitor and a session of a store (a store id has no '/'): what the merges join on.
VISITOR_KEY = "md5_number(store_id || '/' || visitor_id)"
SESSION_KEY = "md5_number(store_id || '/' || session_id)"


def start_deltas(cur) -> None:
    """The batch's contributions to the period tables, per day; `apply_deltas` adds them up."""
    cur.execute("""CREATE OR REPLACE TEMP TABLE metric_deltas (
        store_id VARCHAR, day DATE, sessions BIGINT DEFAULT 0, page_views BIGINT DEFAULT 0,
        carts BIGINT DEFAULT 0, carts_checked_out BIGINT DEFAULT 0, orders BIGINT DEFAULT 0,
        revenue_minor BIGINT DEFAULT 0, gross_profit_minor BIGINT DEFAULT 0)""")
    cur.execute("""CREATE OR REPLACE TEMP TABLE product_deltas (
        store_id VARCHAR, day DATE, product_id VARCHAR, views BIGINT DEFAULT 0, add_to_carts BIGINT DEFAULT 0,
        purchases BIGINT DEFAULT 0, units_sold BIGINT DEFAULT 0, revenue_minor BIGINT DEFAULT 0)""")
    cur.execute("""CREATE OR REPLACE TEMP TABLE funnel_deltas (
        store_id VARCHAR, grain VARCHAR, period_start DATE, step TINYINT, visitors BIGINT)""")


def apply_staged(cur, step: Step = lambda _: None) -> None:
    """Everything `staged` adds, except the period sums (see `apply_deltas`).

    `staged` has the columns of `events`; the category is looked up here, from `products`.
    """
    cur.execute("""
        INSERT INTO events BY NAME
        SELECT s.* REPLACE (p.category AS category) FROM staged s LEFT JOIN products p ON p.product_id = s.product_id""")
    step("events")
    _batch_visitor_days(cur)
    _merge_visitors(cur)
    step("visitors")
    _merge_visitor_days(cur)
    step("visitor_days")
    _merge_sessions(cur)
    step("sessions")
    _count_events(cur)
    _sync_order_segments(cur)
    _advance_watermarks(cur)
    step("orders")


def _advance_watermarks(cur) -> None:
    """The latest event time loaded per store (max: any batching ends in the same value)."""
    cur.execute("""
        INSERT INTO data_watermarks
        SELECT store_id, max(occurred_at) FROM staged WHERE store_id IS NOT NULL GROUP BY store_id
        ON CONFLICT DO UPDATE SET last_event_at = greatest(data_watermarks.last_event_at, excluded.last_event_at)""")


def _batch_visitor_days(cur) -> None:
    # Only funnel events make a visit: a refund weeks later is no visit on the day it is paid out.
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE bvd AS
        SELECT store_id, day, visitor_id, {VISITOR_KEY} AS visitor_key, CAST(max(funnel_step) AS TINYINT) AS max_step,
               min(occurred_at) AS first_at, max(occurred_at) AS last_at,
               {", ".join(_first(c) for c in SEGMENTS)}
        FROM staged WHERE visitor_id IS NOT NULL AND funnel_step IS NOT NULL
        GROUP BY store_id, day, visitor_id""")


def _merge_visitors(cur) -> None:
    # Of the stored visitor only the first sighting is read here; MERGE merges the rest in place.
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE v_new AS
        SELECT b.*, o.first_seen_at AS old_first_seen_at, least(b.first_at, o.first_seen_at) AS first_seen_at
        FROM (SELECT store_id, visitor_id, any_value(visitor_key) AS visitor_key, min(first_at) AS first_at,
                     max(last_at) AS last_at, {", ".join(f"min({c}) AS {c}" for c in SEGMENTS)}
              FROM bvd GROUP BY store_id, visitor_id) b
        LEFT JOIN (SELECT visitor_key, first_seen_at FROM visitors) o ON o.visitor_key = b.visitor_key""")
    _merge_into(
        cur, "visitors", "v_new", "t.visitor_key = n.visitor_key",
        f"first_seen_at = n.first_seen_at, last_seen_at = greatest(t.last_seen_at, n.last_at), {_segment_updates()}",
        ("store_id", "visitor_id", "visitor_key", "first_seen_at", "last_seen_at", *SEGMENT_COLUMNS),
        ("n.store_id", "n.visitor_id", "n.visitor_key", "n.first_seen_at", "n.last_at", *_segment_values()),
        stored="n.old_first_seen_at IS NOT NULL",
    )
    # A late event that moves a visitor's first day earlier makes their later days "returning".
    moved = cur.execute("""
        SELECT count(*) FROM v_new
        WHERE CAST(first_seen_at AS DATE) < CAST(old_first_seen_at AS DATE)""").fetchall()[0][0]
    if moved:
        cur.execute("""
            UPDATE visitor_days SET is_returning = visitor_days.day > CAST(v.first_seen_at AS DATE)
            FROM v_new v
            WHERE CAST(v.first_seen_at AS DATE) < CAST(v.old_first_seen_at AS DATE)
              AND visitor_days.visitor_key = v.visitor_key
              AND visitor_days.is_returning <> (visitor_days.day > CAST(v.first_seen_at AS DATE))""")


def _earliest_period_start(cur) -> date | None:
    """The first day of the earliest week or month the batch touches: older visitor-days cannot matter."""
    first = cur.execute("SELECT min(day) FROM bvd").fetchall()[0][0]
    if first is None:
        return None
    return min(first - timedelta(days=first.weekday()), first.replace(day=1))


def _merge_visitor_days(cur) -> None:
    """Merge the batch's visitor-days; the funnel deltas of every grain follow from what was there.

    A visitor's furthest step in a week or month is the max over its days, so the furthest steps
    of the batch's visitors since the earliest period it touches are all that is read (a range of
    days the day-ordered file keeps together, so zone maps skip the rest).
    """
    since = _earliest_period_start(cur) or date.max
    cur.execute("""
        CREATE OR REPLACE TEMP TABLE vd_old AS
        SELECT visitor_key, day, max_step FROM visitor_days
        WHERE day >= ? AND visitor_key IN (SELECT visitor_key FROM bvd)""", [since])
    cur.execute("""
        CREATE OR REPLACE TEMP TABLE vd_new AS
        SELECT b.*, o.max_step AS old_step, CAST(greatest(b.max_step, o.max_step) AS TINYINT) AS new_step,
               b.day > CAST(v.first_seen_at AS DATE) AS is_returning
        FROM bvd b
        JOIN v_new v ON v.visitor_key = b.visitor_key
        LEFT JOIN vd_old o ON o.visitor_key = b.visitor_key AND o.day = b.day""")
    _merge_into(
        cur, "visitor_days", "vd_new", f"t.visitor_key = n.visitor_key AND t.day = n.day AND t.day >= DATE '{since}'",
        f"max_step = n.new_step, is_returning = n.is_returning, {_segment_updates()}",
        ("store_id", "day", "visitor_id", "visitor_key", "is_returning", "max_step", *SEGMENT_COLUMNS),
        ("n.store_id", "n.day", "n.visitor_id", "n.visitor_key", "n.is_returning", "n.new_step", *_segment_values()),
        stored="n.old_step IS NOT NULL",
    )
    _reach_deltas(cur, "vd_new", "'day'", "day", "new_step")
    # Weeks and months: the furthest step over the period's days, before and after the batch.
    grains = _grains(GRAINS[1:])
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE vp_new AS
        WITH batch AS (
            SELECT store_id, visitor_key, grain, {period_start("grain")} AS period_start, max(max_step) AS max_step
            FROM bvd CROSS JOIN {grains} GROUP BY ALL),
        before AS (
            SELECT visitor_key, grain, {period_start("grain")} AS period_start, max(max_step) AS max_step
            FROM vd_old CROSS JOIN {grains} GROUP BY ALL)
        SELECT b.store_id, b.grain, b.period_start, p.max_step AS old_step,
               CAST(greatest(b.max_step, p.max_step) AS TINYINT) AS new_step
        FROM batch b LEFT JOIN before p USING (visitor_key, grain, period_start)""")
    _reach_deltas(cur, "vp_new", "grain", "period_start", "new_step")


def _reach_deltas(cur, table: str, grain: str, period: str, step: str) -> None:
    """A visitor whose furthest step rises from `old_step` to `step` adds one to each step in between."""
    cur.execute(f"""
        INSERT INTO funnel_deltas
        SELECT store_id, grain, period_start, step, count(*)
        FROM (SELECT store_id, {grain} AS grain, {period} AS period_start,
                     unnest(range(coalesce(old_step, -1) + 1, {step} + 1)) AS step
              FROM {table} WHERE {step} > coalesce(old_step, -1))
        GROUP BY ALL""")


def _merge_sessions(cur) -> None:
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE s_new AS
        SELECT b.*, o.started_at AS old_started_at, least(b.started_at, o.started_at) AS new_started_at
        FROM (SELECT store_id, session_id, {SESSION_KEY} AS session_key, min(visitor_id) AS visitor_id,
                     min(occurred_at) AS started_at, max(occurred_at) AS last_at,
                     CAST(coalesce(max(funnel_step), 0) AS TINYINT) AS max_step, CAST(count(*) AS INTEGER) AS events,
                     {", ".join(_first(c) for c in SEGMENTS)}
              FROM staged WHERE session_id IS NOT NULL GROUP BY store_id, session_id) b
        LEFT JOIN (SELECT session_key, started_at FROM sessions) o ON o.session_key = b.session_key""")
    _merge_into(
        cur, "sessions", "s_new", "t.session_key = n.session_key",
        "visitor_id = least(t.visitor_id, n.visitor_id), started_at = n.new_started_at, "
        "last_seen_at = greatest(t.last_seen_at, n.last_at), max_step = greatest(t.max_step, n.max_step), "
        f"events = t.events + n.events, {_segment_updates()}",
        ("store_id", "session_id", "session_key", "visitor_id", "started_at", "last_seen_at", "max_step", "events",
         *SEGMENT_COLUMNS),
        ("n.store_id", "n.session_id", "n.session_key", "n.visitor_id", "n.started_at", "n.last_at", "n.max_step",
         "n.events", *_segment_values()),
        stored="n.old_started_at IS NOT NULL",
    )
    # A session counts in the period it started in; a late earlier event can move that day.
    cur.execute("""
        INSERT INTO metric_deltas (store_id, day, sessions)
        SELECT store_id, CAST(new_started_at AS DATE), 1 FROM s_new
        WHERE old_started_at IS NULL OR CAST(old_started_at AS DATE) <> CAST(new_started_at AS DATE)
        UNION ALL
        SELECT store_id, CAST(old_started_at AS DATE), -1 FROM s_new
        WHERE CAST(old_started_at AS DATE) <> CAST(new_started_at AS DATE)""")


def _count_events(cur) -> None:
    cur.execute("""
        INSERT INTO metric_deltas (store_id, day, page_views)
        SELECT store_id, day, count(*) FROM staged WHERE kind = 'page_view' GROUP BY ALL""")
    # Product views come from the storefront; add-to-carts from the carts themselves (commerce.py),
    # which every add goes through, so a storefront that also reports them is not counted twice.
    cur.execute("""
        INSERT INTO product_deltas (store_id, day, product_id, views, add_to_carts)
        SELECT store_id, day, product_id, count(*) FILTER (WHERE kind = 'product_view'),
               count(*) FILTER (WHERE kind = 'trafi.cart.item_added.v1')
        FROM staged WHERE product_id IS NOT NULL AND kind IN ('product_view', 'trafi.cart.item_added.v1')
        GROUP BY ALL""")


def _sync_order_segments(cur) -> None:
    """An order's device/country/source are those of its visitor on the day it was placed.

    Either side may arrive first (the storefront's events or the order), so every batch copies
    the merged segments of the visitor-days it touched onto their orders, if they have any.
    """
    touched = cur.execute("""
        SELECT count(*) FROM orders o JOIN vd_new b
          ON o.store_id = b.store_id AND o.visitor_id = b.visitor_id AND o.day = b.day""").fetchall()[0][0]
    if not touched:
        return
    cur.execute("""
        UPDATE orders SET device = s.device, country = s.country, traffic_source = s.traffic_source
        FROM (SELECT v.store_id, v.visitor_id, v.day, v.device, v.country, v.traffic_source
              FROM visitor_days v SEMI JOIN vd_new b ON v.visitor_key = b.visitor_key AND v.day = b.day) s
        WHERE orders.store_id = s.store_id AND orders.visitor_id = s.visitor_id AND orders.day = s.day
          AND (orders.device IS DISTINCT FROM s.device OR orders.country IS DISTINCT FROM s.country
               OR orders.traffic_source IS DISTINCT FROM s.traffic_source)""")


def apply_deltas(cur) -> None:
    """Add the batch's per-day contributions to every grain of the period tables."""
    grains = _grains(GRAINS)
    cur.execute(f"""
        INSERT INTO metrics_by_period BY NAME
        SELECT store_id, grain, {period_start("grain")} AS period_start, sum(sessions) AS sessions,
               sum(page_views) AS page_views, sum(carts) AS carts, sum(carts_checked_out) AS carts_checked_out,
               sum(orders) AS orders, sum(revenue_minor) AS revenue_minor,
               sum(gross_profit_minor) AS gross_profit_minor
        FROM metric_deltas CROSS JOIN {grains} GROUP BY ALL
        ON CONFLICT DO UPDATE SET
            sessions = metrics_by_period.sessions + excluded.sessions,
            page_views = metrics_by_period.page_views + excluded.page_views,
            carts = metrics_by_period.carts + excluded.carts,
            carts_checked_out = metrics_by_period.carts_checked_out + excluded.carts_checked_out,
            orders = metrics_by_period.orders + excluded.orders,
            revenue_minor = metrics_by_period.revenue_minor + excluded.revenue_minor,
            gross_profit_minor = metrics_by_period.gross_profit_minor + excluded.gross_profit_minor""")
    # A session that moved to an earlier day can leave a period with nothing in it: such a row says
    # nothing, and a warehouse fed in other batches would not have it.
    cur.execute(f"""
        DELETE FROM metrics_by_period m USING (SELECT DISTINCT store_id, day FROM metric_deltas) d
        WHERE m.store_id = d.store_id AND m.period_start = {period_start("m.grain", "d.day")}
          AND m.sessions = 0 AND m.page_views = 0 AND m.carts = 0 AND m.carts_checked_out = 0 AND m.orders = 0
          AND m.revenue_minor = 0 AND m.gross_profit_minor = 0""")
    cur.execute(f"""
        INSERT INTO product_stats_by_period BY NAME
        SELECT d.store_id, grain, {period_start("grain", "d.day")} AS period_start, d.product_id,
               any_value(p.category) AS category, sum(d.views) AS views, sum(d.add_to_carts) AS add_to_carts,
               sum(d.purchases) AS purchases, sum(d.units_sold) AS units_sold, sum(d.revenue_minor) AS revenue_minor
        FROM product_deltas d LEFT JOIN products p ON p.product_id = d.product_id CROSS JOIN {grains}
        GROUP BY d.store_id, grain, period_start, d.product_id
        ON CONFLICT DO UPDATE SET
            category = excluded.category,
            views = product_stats_by_period.views + excluded.views,
            add_to_carts = product_stats_by_period.add_to_carts + excluded.add_to_carts,
            purchases = product_stats_by_period.purchases + excluded.purchases,
            units_sold = product_stats_by_period.units_sold + excluded.units_sold,
            revenue_minor = product_stats_by_period.revenue_minor + excluded.revenue_minor""")
    cur.execute("""
        INSERT INTO funnel_by_period BY NAME
        SELECT store_id, grain, period_start, step, sum(visitors) AS visitors FROM funnel_deltas GROUP BY ALL
        ON CONFLICT DO UPDATE SET visitors = funnel_by_period.visitors + excluded.visitors""")
