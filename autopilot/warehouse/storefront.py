"""Storefront events (telemetry rows) as a staged batch: transpose in Python, derive in DuckDB.

Loading hundreds of thousands of events a second leaves no room for per-event Python: the
rows are transposed into columns (`zip(*rows)`), each column becomes one Arrow array, and
every derivation — the day, the funnel step, the category — is SQL over the registered batch.
"""

from __future__ import annotations

import pyarrow as pa

from autopilot.telemetry.columns import TELEMETRY_COLUMNS

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
    """)
