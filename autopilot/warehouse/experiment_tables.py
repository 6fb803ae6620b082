"""What a decider tick would otherwise recompute from every exposure, kept up to date by the feeder.

Two tables (schema.py), changed in the transaction of the batch that changes what they derive from:

* `experiment_units` — per (store, flag): the units of each arm and the visitors seen in several
  variants (exactly what experiments.py's per-arm count of `exposures` gives over a window holding
  every first exposure of the flag), and the earliest and latest first exposure, which tell whether a
  window holds them all. A batch of exposures moves each of its visitors from its old class (none,
  treatment, control, multiple) to its new one.
* `experiment_activity` — per (store, flag, visitor) of an exposed visitor (not in several variants)
  with a paid order or a declined payment from 14 days before their first exposure on: the outcome
  sums (activity from the first exposure on, with no end) and the covariate sums (the 14 days before),
  and the time of the latest activity counted, which tells whether a window's end cuts any of it. A few
  % of the exposures. A row is recomputed — deleted and derived again from `exposures`, `order_profit`
  and `payment_failures` — whenever an exposure of it or an order, payment, refund or declined payment
  of its visitor arrives, so late orders, refunds and first exposures that move earlier need nothing
  special, and loading a batch twice changes nothing.

`experiment_sync` holds a signature of the source tables (row counts and a few sums, cheap to
compute) as of the last maintenance. Any other writer of those tables (a bulk load, the simulator, a
test) leaves it behind: experiments.py then computes everything from the source tables instead, and
the feeder's next batch that touches them rebuilds the derived tables from scratch (`refresh`).
"""

from __future__ import annotations

from autopilot.warehouse.aggregates import VISITOR_KEY

COVARIATE_DAYS = 14
ARMS = ("treatment", "control")

# The source tables' signature: what any change that matters to the derived tables changes.
_SIGNATURE = """
    SELECT (SELECT count(*) FROM exposures),
           (SELECT count(*) FILTER (WHERE multiple_variants) FROM exposures),
           o.*, (SELECT count(*) FROM payment_failures), (SELECT count(visitor_id) FROM payment_failures)
    FROM (SELECT count(*), count(paid_at), count(visitor_id), coalesce(sum(refunded_minor), 0),
                 coalesce(sum(cogs_minor), 0), coalesce(sum(epoch_us(paid_at)), 0) FROM orders) o"""


def signature(cur) -> str:
    return repr(tuple(cur.execute(_SIGNATURE).fetchall()[0]))


def in_sync(cur) -> bool:
    """Whether the derived tables are those of the source tables as they stand."""
    stored = cur.execute("SELECT signature FROM experiment_sync").fetchall()
    return bool(stored) and stored[0][0] == signature(cur)


def _record(cur) -> None:
    cur.execute("DELETE FROM experiment_sync")
    cur.execute("INSERT INTO experiment_sync VALUES (?)", [signature(cur)])


# --- the derivations, over all rows or a batch's ------------------------------------------------------


def _activity_sql(visitors: str | None) -> str:
    """Paid orders and declined payments keyed like exposures.visitor_key; of `visitors`' (store_id,
    visitor_id) only, when given (a semi-join on the text ids: orders hold no integer key)."""
    only = "" if visitors is None else f" SEMI JOIN {visitors} v ON v.store_id = s.store_id AND v.visitor_id = s.visitor_id"
    return f"""
        SELECT {VISITOR_KEY} AS visitor_key, ts, revenue, profit, orders, failures FROM (
            SELECT s.store_id, s.visitor_id, s.placed_at AS ts, s.revenue_minor - s.refunded_minor AS revenue,
                   s.gross_profit_minor AS profit, 1 AS orders, 0 AS failures
            FROM order_profit s{only}
            WHERE s.paid_at IS NOT NULL AND s.visitor_id IS NOT NULL
            UNION ALL
            SELECT s.store_id, s.visitor_id, s.failed_at, 0, 0, 0, 1
            FROM payment_failures s{only} WHERE s.visitor_id IS NOT NULL)"""


def _insert_activity(cur, units: str, activity: str) -> None:
    """experiment_activity rows of the exposures `units` (store_id, flag_key, visitor_key, variant,
    first_exposed_at; not multiple_variants) with the activity rows `activity` (_activity_sql)."""
    y, x = "a.ts >= e.first_exposed_at", "a.ts < e.first_exposed_at"
    cur.execute(f"""
        INSERT INTO experiment_activity
        SELECT e.store_id, e.flag_key, e.visitor_key, e.variant, e.first_exposed_at,
               CAST(coalesce(sum(a.revenue) FILTER (WHERE {y}), 0) AS BIGINT),
               CAST(coalesce(sum(a.revenue) FILTER (WHERE {x}), 0) AS BIGINT),
               CAST(coalesce(sum(a.profit) FILTER (WHERE {y}), 0) AS BIGINT),
               CAST(coalesce(sum(a.profit) FILTER (WHERE {x}), 0) AS BIGINT),
               CAST(coalesce(sum(a.orders) FILTER (WHERE {y}), 0) AS INTEGER),
               CAST(coalesce(sum(a.orders) FILTER (WHERE {x}), 0) AS INTEGER),
               CAST(coalesce(sum(a.failures) FILTER (WHERE {y}), 0) AS INTEGER),
               CAST(coalesce(sum(a.failures) FILTER (WHERE {x}), 0) AS INTEGER),
               max(a.ts)
        FROM {units} e JOIN ({activity}) a ON a.visitor_key = e.visitor_key
        WHERE a.ts >= e.first_exposed_at - INTERVAL {COVARIATE_DAYS} DAY
        GROUP BY e.store_id, e.flag_key, e.visitor_key, e.variant, e.first_exposed_at""")


_ARM_ROWS = "variant IN ('treatment', 'control')"
_UNIT = f"NOT multiple_variants AND {_ARM_ROWS}"


def refresh(cur) -> None:
    """Both derived tables from scratch (a new or upgraded file, or after another writer)."""
    cur.execute("DELETE FROM experiment_units")
    cur.execute(f"""
        INSERT INTO experiment_units
        SELECT store_id, flag_key,
               count(*) FILTER (WHERE NOT multiple_variants AND variant = 'treatment'),
               count(*) FILTER (WHERE NOT multiple_variants AND variant = 'control'),
               count(*) FILTER (WHERE multiple_variants),
               min(first_exposed_at), max(first_exposed_at)
        FROM exposures WHERE {_ARM_ROWS} GROUP BY store_id, flag_key""")
    cur.execute("DELETE FROM experiment_activity")
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE exp_refresh_activity AS {_activity_sql(None)}""")
    try:
        # Only the exposures of visitors with activity: a semi-join DuckDB runs as a filter in the scan.
        cur.execute(f"""
            CREATE OR REPLACE TEMP TABLE exp_refresh_units AS
            SELECT store_id, flag_key, visitor_key, variant, first_exposed_at FROM exposures
            WHERE {_UNIT} AND visitor_key IN (SELECT visitor_key FROM exp_refresh_activity)""")
        _insert_activity(cur, "exp_refresh_units", "SELECT * FROM exp_refresh_activity")
    finally:
        cur.execute("DROP TABLE IF EXISTS exp_refresh_activity")
        cur.execute("DROP TABLE IF EXISTS exp_refresh_units")
    _record(cur)


def ensure(cur) -> None:
    """Schema upgrade: fill the derived tables of a file that predates them (create_schema)."""
    if not cur.execute("SELECT count(*) FROM experiment_sync").fetchall()[0][0]:
        refresh(cur)


# --- maintenance by the feeder ------------------------------------------------------------------------

_CLASS = ("CASE WHEN {t}.variant NOT IN ('treatment', 'control') THEN NULL WHEN {t}.multiple_variants THEN 'multiple' "
          "ELSE {t}.variant END")


def exposures_before(cur, batch: str) -> bool:
    """Before a batch's exposures are merged: the stored rows they will change (`exp_before`).

    `batch` holds the batch's (store_id, flag_key, visitor_key) rows. Returns whether the derived tables
    were in step with the source tables; if not, `exposures_changed` rebuilds them instead.
    """
    synced = in_sync(cur)
    if synced:
        cur.execute(f"""
            CREATE OR REPLACE TEMP TABLE exp_before AS
            SELECT e.store_id, e.flag_key, e.visitor_key, e.variant, e.first_exposed_at, e.multiple_variants
            FROM (SELECT store_id, flag_key, visitor_key, variant, first_exposed_at, multiple_variants FROM exposures
                  WHERE visitor_key IN (SELECT visitor_key FROM {batch})) e
            SEMI JOIN {batch} b ON b.visitor_key = e.visitor_key AND b.flag_key = e.flag_key AND b.store_id = e.store_id""")
    return synced


def exposures_changed(cur, after: str, synced: bool) -> None:
    """After the merge: `after` holds the merged rows of the batch's keys (the exposures' columns)."""
    if not synced:
        refresh(cur)
        return
    old, new = _CLASS.format(t="b"), _CLASS.format(t="a")
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE exp_changes AS
        SELECT a.store_id, a.flag_key, {old} AS old_class, {new} AS new_class,
               b.first_exposed_at AS old_at, a.first_exposed_at AS new_at
        FROM {after} a
        LEFT JOIN exp_before b ON b.visitor_key = a.visitor_key AND b.flag_key = a.flag_key AND b.store_id = a.store_id
        WHERE b.visitor_key IS NULL OR {old} IS DISTINCT FROM {new} OR b.first_exposed_at <> a.first_exposed_at""")
    # A flag whose latest first exposure moved earlier: its latest is looked up again below.
    stale = cur.execute("""
        SELECT DISTINCT c.store_id, c.flag_key FROM exp_changes c
        JOIN experiment_units u ON u.store_id = c.store_id AND u.flag_key = c.flag_key
        WHERE c.old_class IS NOT NULL AND c.old_at = u.first_exposed_max AND c.new_at < c.old_at""").fetchall()

    def delta(arm: str) -> str:
        return (f"count(*) FILTER (WHERE new_class = '{arm}') - count(*) FILTER (WHERE old_class = '{arm}')")

    cur.execute(f"""
        INSERT INTO experiment_units
        SELECT store_id, flag_key, {delta("treatment")}, {delta("control")}, {delta("multiple")},
               min(new_at) FILTER (WHERE new_class IS NOT NULL), max(new_at) FILTER (WHERE new_class IS NOT NULL)
        FROM exp_changes GROUP BY store_id, flag_key
        HAVING count(*) FILTER (WHERE new_class IS NOT NULL) > 0
        ON CONFLICT DO UPDATE SET
            treatment_units = experiment_units.treatment_units + excluded.treatment_units,
            control_units = experiment_units.control_units + excluded.control_units,
            multiple_variant_units = experiment_units.multiple_variant_units + excluded.multiple_variant_units,
            first_exposed_min = least(experiment_units.first_exposed_min, excluded.first_exposed_min),
            first_exposed_max = greatest(experiment_units.first_exposed_max, excluded.first_exposed_max)""")
    for store_id, flag_key in stale:
        cur.execute(f"""
            UPDATE experiment_units SET first_exposed_max = (
                SELECT max(first_exposed_at) FROM exposures WHERE store_id = ? AND flag_key = ? AND {_ARM_ROWS})
            WHERE store_id = ? AND flag_key = ?""", [store_id, flag_key, store_id, flag_key])
    # The activity rows of the batch's (store, flag, visitor): derived again from their merged exposure.
    cur.execute(f"""
        DELETE FROM experiment_activity USING {after} a
        WHERE experiment_activity.visitor_key = a.visitor_key AND experiment_activity.flag_key = a.flag_key
          AND experiment_activity.store_id = a.store_id""")
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE exp_visitors AS
        SELECT DISTINCT store_id, visitor_id FROM {after}""")
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE exp_units AS
        SELECT store_id, flag_key, visitor_key, variant, first_exposed_at FROM {after} WHERE {_UNIT}""")
    _insert_activity(cur, "exp_units", _activity_sql("exp_visitors"))
    _record(cur)


def activity_changed(cur, visitors: str, synced: bool) -> None:
    """After a commerce batch: `visitors` (store_id, visitor_id) whose paid orders, refunds or declined
    payments changed. Their activity rows, for every flag, are derived again."""
    if not synced:
        refresh(cur)
        return
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE exp_visitors AS
        SELECT DISTINCT store_id, visitor_id, {VISITOR_KEY} AS visitor_key FROM {visitors}
        WHERE store_id IS NOT NULL AND visitor_id IS NOT NULL""")
    if cur.execute("SELECT count(*) FROM exp_visitors").fetchall()[0][0]:
        cur.execute("DELETE FROM experiment_activity WHERE visitor_key IN (SELECT visitor_key FROM exp_visitors)")
        cur.execute(f"""
            CREATE OR REPLACE TEMP TABLE exp_units AS
            SELECT store_id, flag_key, visitor_key, variant, first_exposed_at FROM exposures
            WHERE {_UNIT} AND visitor_key IN (SELECT visitor_key FROM exp_visitors)""")
        _insert_activity(cur, "exp_units", _activity_sql("exp_visitors"))
    _record(cur)
