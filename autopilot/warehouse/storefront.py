"""Storefront events (telemetry rows) as a staged batch: transpose in Python, derive in DuckDB.

Loading hundreds of thousands of events a second leaves no room for per-event Python: the
rows are transposed into columns (`zip(*rows)`), each column becomes one Arrow array, and
every derivation — the day, the funnel step, the category — is SQL over the registered batch.
"""

from __future__ import annotations

import warnings

import pyarrow as pa

from autopilot.telemetry.columns import EXPOSURE, TELEMETRY_COLUMNS
from autopilot.warehouse import experiment_tables
from autopilot.warehouse.aggregates import VISITOR_KEY

_INTEGER = {"position": pa.int64(), "occurred_at_us": pa.int64(), "received_at_us": pa.int64(),
            "quantity": pa.int32(), "price_minor": pa.int64(), "value_minor": pa.int64()}
TELEMETRY_SCHEMA = pa.schema([(name, _INTEGER.get(name, pa.string())) for name in TELEMETRY_COLUMNS])

# The funnel step of each storefront event kind (indexes into schema.FUNNEL_STEPS).
STEP_OF_KIND = """CASE kind
    WHEN 'page_view' THEN 0 WHEN 'product_view' THEN 1 WHEN 'add_to_cart' THEN 2 WHEN 'checkout_start' THEN 3
    WHEN 'checkout_step' THEN CASE checkout_step WHEN 'shipping' THEN 4 WHEN 'payment' THEN 5 END
    WHEN 'checkout_complete' THEN 6 END"""


def telemetry_table(rows: list[tuple]) -> pa.Table:
    """Rows in TELEMETRY_COLUMNS order → one Arrow table (column-wise, no per-row work)."""
    columns = zip(*rows)
    return pa.Table.from_arrays(
        [pa.array(values, type=field.type) for values, field in zip(columns, TELEMETRY_SCHEMA)],
        schema=TELEMETRY_SCHEMA,
    )


def stage_telemetry(cur, batch: str = "telemetry_batch") -> None:
    """`staged` (the events table's shape) over the registered Arrow batch named `batch`.

    A view, not a copy: each step reads the columns it needs straight from the Arrow buffers.
    amount_minor: the order value of a checkout_complete, else the unit price (add_to_cart).
    """
    cur.execute(f"""
        CREATE OR REPLACE TEMP VIEW staged AS
        SELECT b.store_id, b.event_id, 'telemetry' AS source, b.position, b.kind,
               make_timestamp(b.occurred_at_us) AS occurred_at,
               CAST(make_timestamp(b.occurred_at_us) AS DATE) AS day,
               CAST({STEP_OF_KIND} AS TINYINT) AS funnel_step,
               b.visitor_id, b.session_id, b.customer_id, b.device, b.country, b.traffic_source,
               b.product_id, b.sku, CAST(NULL AS VARCHAR) AS category, b.quantity,
               coalesce(b.value_minor, b.price_minor) AS amount_minor, b.currency,
               CAST(NULL AS VARCHAR) AS cart_id, b.order_id, b.properties, b.url, b.referrer, b.variant
        FROM {batch} b
        WHERE b.kind <> '{EXPOSURE}'
    """)


def load_exposures(cur, batch: str = "telemetry_batch") -> int:
    """Merge the batch's exposure rows into `exposures`, inside the batch's transaction; returns how many rows.

    Exposures are no storefront activity, so `stage_telemetry` leaves them out of `staged` (no event,
    visitor, session, funnel step or page view comes of them). Per (store, flag, visitor) the earliest
    exposure wins with its variant (ties: the smallest variant), and a visitor seen in more than one
    variant is marked `multiple_variants`. Both merges are min/or, so any batching of the log (or
    loading the same rows twice) ends in the same rows. The experiment tables follow in the same
    transaction (experiment_tables.py): the units' counts move with each row's class, and the activity
    rows of the batch's (store, flag, visitor) are derived again.
    """
    found = cur.execute(f"SELECT count(*) FROM {batch} WHERE kind = '{EXPOSURE}'").fetchall()[0][0]
    if not found:
        return 0
    cur.execute(f"""
        CREATE OR REPLACE TEMP TABLE exposure_batch AS
        SELECT store_id, flag_key, visitor_id, arg_min(variant, {{'t': exposed_at, 'v': variant}}) AS variant,
               min(exposed_at) AS first_exposed_at, count(DISTINCT variant) > 1 AS multiple_variants,
               {VISITOR_KEY} AS visitor_key
        FROM (SELECT store_id, json_extract_string(properties, '$.flag_key') AS flag_key, visitor_id, variant,
                     make_timestamp(occurred_at_us) AS exposed_at
              FROM {batch} WHERE kind = '{EXPOSURE}') e
        WHERE flag_key IS NOT NULL AND visitor_id IS NOT NULL AND variant IS NOT NULL
        GROUP BY store_id, flag_key, visitor_id""")
    synced = experiment_tables.exposures_before(cur, "exposure_batch")
    merged = cur.execute("""
        INSERT INTO exposures (store_id, flag_key, visitor_id, variant, first_exposed_at, multiple_variants, visitor_key)
        SELECT store_id, flag_key, visitor_id, variant, first_exposed_at, multiple_variants, visitor_key
        FROM exposure_batch
        ON CONFLICT DO UPDATE SET
            first_exposed_at = least(exposures.first_exposed_at, excluded.first_exposed_at),
            variant = CASE WHEN (excluded.first_exposed_at, excluded.variant) < (exposures.first_exposed_at, exposures.variant)
                           THEN excluded.variant ELSE exposures.variant END,
            multiple_variants = exposures.multiple_variants OR excluded.multiple_variants
                                OR exposures.variant <> excluded.variant
        RETURNING store_id, flag_key, visitor_id, variant, first_exposed_at, multiple_variants""")
    with warnings.catch_warnings():  # "an extra copy of the rows": the batch's, a small price
        warnings.simplefilter("ignore")
        merged = merged.to_arrow_table()
    cur.register("exposure_returned", merged)
    try:
        cur.execute(f"""
            CREATE OR REPLACE TEMP TABLE exposure_merged AS
            SELECT *, {VISITOR_KEY} AS visitor_key FROM exposure_returned""")
    finally:
        cur.unregister("exposure_returned")
    experiment_tables.exposures_changed(cur, "exposure_merged", synced)
    cur.execute(f"""
        INSERT INTO data_watermarks
        SELECT store_id, make_timestamp(max(occurred_at_us)) FROM {batch} WHERE kind = '{EXPOSURE}' GROUP BY store_id
        ON CONFLICT DO UPDATE SET last_event_at = greatest(data_watermarks.last_event_at, excluded.last_event_at)""")
    return found
