"""The warehouse's tables (DuckDB). One process owns the file (ARCHITECTURE.md, "Analytics").

Units: money in integer minor units of the store's currency; times are TIMESTAMP in UTC; a
visitor is the randomisation unit of the autopilot (AUTOPILOT.md §5), a cart stands in for one
when a storefront sends no events (its visitor id is then "cart:<cart id>").

The funnel (AUTOPILOT.md §2) is numbered, and a visitor "reached" step k when the furthest step
seen that day is ≥ k — so the counts never grow along the funnel and drop-off is well defined.
"""

from __future__ import annotations

FUNNEL_STEPS = ("visit", "product_view", "add_to_cart", "checkout_start", "shipping", "payment", "complete")
GRAINS = ("day", "week", "month")  # period_start: the day, the ISO week's Monday, the month's 1st

SCHEMA = """
CREATE TABLE IF NOT EXISTS warehouse_positions (
    source   VARCHAR PRIMARY KEY,  -- 'telemetry' (storefront events) | 'commerce' (the event store)
    position BIGINT NOT NULL       -- the last position loaded, committed with the rows it loaded
);

-- Every storefront and domain event, one row each.
CREATE TABLE IF NOT EXISTS events (
    store_id       VARCHAR NOT NULL,
    event_id       VARCHAR NOT NULL,
    source         VARCHAR NOT NULL,   -- 'telemetry' | 'commerce'
    position       BIGINT NOT NULL,    -- in its source log
    kind           VARCHAR NOT NULL,   -- storefront: page_view … checkout_complete, commerce: the event topic
    occurred_at    TIMESTAMP NOT NULL,
    day            DATE NOT NULL,
    funnel_step    TINYINT,            -- index into FUNNEL_STEPS, NULL when the event is no funnel step
    visitor_id     VARCHAR,
    session_id     VARCHAR,
    customer_id    VARCHAR,
    device         VARCHAR,
    country        VARCHAR,
    traffic_source VARCHAR,
    product_id     VARCHAR,
    sku            VARCHAR,
    category       VARCHAR,
    quantity       INTEGER,
    amount_minor   BIGINT,
    currency       VARCHAR,
    cart_id        VARCHAR,
    order_id       VARCHAR,
    properties     VARCHAR,             -- JSON text
    url            VARCHAR,             -- storefront events: the page, its referrer, the product's variant
    referrer       VARCHAR,
    variant        VARCHAR
);

CREATE TABLE IF NOT EXISTS sessions (
    store_id       VARCHAR NOT NULL,
    session_id     VARCHAR NOT NULL,
    visitor_id     VARCHAR,
    started_at     TIMESTAMP NOT NULL,
    last_seen_at   TIMESTAMP NOT NULL,
    device         VARCHAR,
    country        VARCHAR,
    traffic_source VARCHAR,
    max_step       TINYINT NOT NULL,
    events         INTEGER NOT NULL,
    -- When the event that gave device/country/traffic_source happened: merging keeps the earliest
    -- (ties: the smallest value), so any batching of the same events ends in the same row.
    device_at         TIMESTAMP,
    country_at        TIMESTAMP,
    traffic_source_at TIMESTAMP,
    session_key       UHUGEINT NOT NULL,  -- md5_number(store_id || '/' || session_id): what merges join on
    PRIMARY KEY (store_id, session_id)
);

CREATE TABLE IF NOT EXISTS visitors (
    store_id       VARCHAR NOT NULL,
    visitor_id     VARCHAR NOT NULL,
    first_seen_at  TIMESTAMP NOT NULL,
    last_seen_at   TIMESTAMP NOT NULL,
    device         VARCHAR,
    country        VARCHAR,
    traffic_source VARCHAR,
    device_at         TIMESTAMP,  -- as in sessions
    country_at        TIMESTAMP,
    traffic_source_at TIMESTAMP,
    visitor_key       UHUGEINT NOT NULL,  -- md5_number(store_id || '/' || visitor_id), as session_key
    PRIMARY KEY (store_id, visitor_id)
);

-- One row per visitor and day: the furthest funnel step and the segment of that day.
-- The funnel, its segment breakdowns and the diagnosis read this, not `events`.
CREATE TABLE IF NOT EXISTS visitor_days (
    store_id       VARCHAR NOT NULL,
    day            DATE NOT NULL,
    visitor_id     VARCHAR NOT NULL,
    device         VARCHAR,
    country        VARCHAR,
    traffic_source VARCHAR,
    is_returning   BOOLEAN NOT NULL,   -- first seen before this day
    max_step       TINYINT NOT NULL,
    device_at         TIMESTAMP,       -- as in sessions
    country_at        TIMESTAMP,
    traffic_source_at TIMESTAMP,
    visitor_key       UHUGEINT,        -- as in visitors (NULL in rows written by others, e.g. the simulator)
    PRIMARY KEY (store_id, day, visitor_id)
);

-- First exposure of a visitor to a flag (AUTOPILOT.md §4), de-duplicated: the earliest exposure
-- wins (ties: the smallest variant), and a visitor ever seen in another variant of the same flag is
-- marked, to be counted apart and left out of both arms (experiments.py).
CREATE TABLE IF NOT EXISTS exposures (
    store_id          VARCHAR NOT NULL,
    flag_key          VARCHAR NOT NULL,
    visitor_id        VARCHAR NOT NULL,
    variant           VARCHAR NOT NULL,   -- treatment | control
    first_exposed_at  TIMESTAMP NOT NULL,
    multiple_variants BOOLEAN NOT NULL DEFAULT false,
    visitor_key       UHUGEINT,  -- md5_number(store_id || '/' || visitor_id), as in visitors: what experiments join on
    PRIMARY KEY (store_id, flag_key, visitor_id)
);

-- What experiment statistics would otherwise recompute from every exposure (experiment_tables.py),
-- kept by the feeder in each batch's transaction. Per (store, flag): the units of each arm and those
-- seen in several variants, and the earliest and latest first exposure.
CREATE TABLE IF NOT EXISTS experiment_units (
    store_id               VARCHAR NOT NULL,
    flag_key               VARCHAR NOT NULL,
    treatment_units        BIGINT NOT NULL,     -- not multiple_variants
    control_units          BIGINT NOT NULL,
    multiple_variant_units BIGINT NOT NULL,
    first_exposed_min      TIMESTAMP NOT NULL,
    first_exposed_max      TIMESTAMP NOT NULL,
    PRIMARY KEY (store_id, flag_key)
);

-- Per exposed visitor (not in several variants) with a paid order or a declined payment from 14 days
-- before their first exposure on: outcome sums (y: from the first exposure on, no end) and covariate
-- sums (x: the 14 days before), money in minor units: a few % of the exposures.
CREATE TABLE IF NOT EXISTS experiment_activity (
    store_id         VARCHAR NOT NULL,
    flag_key         VARCHAR NOT NULL,
    visitor_key      UHUGEINT NOT NULL,   -- as in exposures
    variant          VARCHAR NOT NULL,
    first_exposed_at TIMESTAMP NOT NULL,
    y_revenue        BIGINT NOT NULL,     -- Σ revenue − refunded of paid orders
    x_revenue        BIGINT NOT NULL,
    y_profit         BIGINT NOT NULL,     -- Σ order_profit.gross_profit_minor of those orders
    x_profit         BIGINT NOT NULL,
    y_orders         INTEGER NOT NULL,    -- paid orders
    x_orders         INTEGER NOT NULL,
    y_errors         INTEGER NOT NULL,    -- declined payments
    x_errors         INTEGER NOT NULL,
    last_activity_at TIMESTAMP NOT NULL   -- the latest order or declined payment counted
);

-- The signature of exposures, orders and payment_failures the two tables above were derived from.
CREATE TABLE IF NOT EXISTS experiment_sync (
    signature VARCHAR NOT NULL
);

-- Declined payments (trafi.order.payment_failed.v1): the checkout errors guardrail (AUTOPILOT.md §7).
CREATE TABLE IF NOT EXISTS payment_failures (
    store_id   VARCHAR NOT NULL,
    event_id   VARCHAR PRIMARY KEY,
    order_id   VARCHAR NOT NULL,
    visitor_id VARCHAR,
    failed_at  TIMESTAMP NOT NULL
);

-- The latest event time loaded per store (storefront, commerce and exposures): the data watermark
-- the deciders record, and what "no data for 24 h" is measured from.
CREATE TABLE IF NOT EXISTS data_watermarks (
    store_id      VARCHAR PRIMARY KEY,
    last_event_at TIMESTAMP NOT NULL
);

-- Orders with the money of gross profit (AUTOPILOT.md §5), from the commerce log.
CREATE TABLE IF NOT EXISTS orders (
    store_id               VARCHAR NOT NULL,
    order_id               VARCHAR PRIMARY KEY,
    cart_id                VARCHAR,
    visitor_id             VARCHAR,
    customer_id            VARCHAR,
    placed_at              TIMESTAMP NOT NULL,
    day                    DATE NOT NULL,
    currency               VARCHAR NOT NULL,
    revenue_minor          BIGINT NOT NULL,  -- goods + shipping, net of tax
    tax_minor              BIGINT NOT NULL,
    cogs_minor             BIGINT NOT NULL,  -- Σ unit cost × quantity
    discount_minor         BIGINT NOT NULL,
    shipping_subsidy_minor BIGINT NOT NULL,  -- shipping cost the customer did not pay for
    payment_fee_minor      BIGINT NOT NULL,
    refunded_minor         BIGINT NOT NULL,  -- net of tax
    paid_at                TIMESTAMP,
    device                 VARCHAR,
    country                VARCHAR,
    traffic_source         VARCHAR
);

CREATE OR REPLACE VIEW order_profit AS
SELECT *, revenue_minor - refunded_minor - cogs_minor - discount_minor - shipping_subsidy_minor
          - payment_fee_minor AS gross_profit_minor
FROM orders;

-- Per-visitor outcomes: what the deciders of AUTOPILOT.md §7 measure.
CREATE OR REPLACE VIEW visitor_outcomes AS
SELECT store_id, visitor_id, count(*) AS orders, sum(revenue_minor - refunded_minor) AS revenue_minor,
       sum(gross_profit_minor) AS gross_profit_minor, min(placed_at) AS first_order_at
FROM order_profit WHERE paid_at IS NOT NULL AND visitor_id IS NOT NULL
GROUP BY store_id, visitor_id;

-- Incremental aggregates, per store and period (GRAINS). Updated by adding each batch's
-- contribution, never recomputed from `events`.
CREATE TABLE IF NOT EXISTS funnel_by_period (
    store_id     VARCHAR NOT NULL,
    grain        VARCHAR NOT NULL,
    period_start DATE NOT NULL,
    step         TINYINT NOT NULL,
    visitors     BIGINT NOT NULL,   -- distinct visitors whose furthest step in the period is ≥ step
    PRIMARY KEY (store_id, grain, period_start, step)
);

CREATE TABLE IF NOT EXISTS metrics_by_period (
    store_id           VARCHAR NOT NULL,
    grain              VARCHAR NOT NULL,
    period_start       DATE NOT NULL,
    sessions           BIGINT NOT NULL,
    page_views         BIGINT NOT NULL,
    carts              BIGINT NOT NULL,   -- carts that got an item
    carts_checked_out  BIGINT NOT NULL,
    orders             BIGINT NOT NULL,
    revenue_minor      BIGINT NOT NULL,
    gross_profit_minor BIGINT NOT NULL,
    PRIMARY KEY (store_id, grain, period_start)
);

CREATE TABLE IF NOT EXISTS product_stats_by_period (
    store_id      VARCHAR NOT NULL,
    grain         VARCHAR NOT NULL,
    period_start  DATE NOT NULL,
    product_id    VARCHAR NOT NULL,
    category      VARCHAR,
    views         BIGINT NOT NULL,
    add_to_carts  BIGINT NOT NULL,
    purchases     BIGINT NOT NULL,   -- order lines
    units_sold    BIGINT NOT NULL,
    revenue_minor BIGINT NOT NULL,
    PRIMARY KEY (store_id, grain, period_start, product_id)
);
"""


# What the feeder keeps besides the contract's tables: the carts and products that commerce events
# refer to, order lines, and the analytics worker's scheduled jobs.
SCHEMA_FEEDER = """
CREATE TABLE IF NOT EXISTS carts (
    store_id       VARCHAR NOT NULL,
    cart_id        VARCHAR PRIMARY KEY,
    visitor_id     VARCHAR NOT NULL,   -- the storefront's, else 'cart:<cart id>'
    created_at     TIMESTAMP NOT NULL,
    first_item_day DATE,               -- the cart's cohort for cart abandonment
    checked_out_at TIMESTAMP,
    order_id       VARCHAR
);

CREATE TABLE IF NOT EXISTS products (
    store_id   VARCHAR NOT NULL,
    product_id VARCHAR PRIMARY KEY,
    category   VARCHAR               -- the first of its categories (alphabetical), NULL without
);

CREATE TABLE IF NOT EXISTS order_lines (
    store_id        VARCHAR NOT NULL,
    order_id        VARCHAR NOT NULL,
    sku             VARCHAR NOT NULL,
    product_id      VARCHAR NOT NULL,
    quantity        INTEGER NOT NULL,
    unit_cost_minor BIGINT NOT NULL,
    revenue_minor   BIGINT NOT NULL,  -- the line's net amount (tax excluded)
    PRIMARY KEY (order_id, sku)
);

CREATE TABLE IF NOT EXISTS warehouse_jobs (
    name        VARCHAR PRIMARY KEY,
    last_run_at TIMESTAMP NOT NULL,  -- when it last started (UTC), the next run is interval_s later
    last_error  VARCHAR              -- NULL when that run succeeded
);
"""


def _statements(script: str):
    return (statement for statement in script.split(";") if statement.strip())


# Columns added to tables of files made before them (CREATE TABLE IF NOT EXISTS leaves those as they
# were). A rebuild (rebuild.py) gives them their full definition, NOT NULL included.
UPGRADES = (
    "ALTER TABLE exposures ADD COLUMN IF NOT EXISTS multiple_variants BOOLEAN DEFAULT false",
    "ALTER TABLE exposures ADD COLUMN IF NOT EXISTS visitor_key UHUGEINT",
)


def create_schema(con) -> None:
    """Create what is missing; idempotent. `con` is a duckdb connection."""
    for statement in (*_statements(SCHEMA), *_statements(SCHEMA_FEEDER), *UPGRADES):
        con.execute(statement)
    from autopilot.warehouse.experiment_tables import ensure

    ensure(con)  # the experiment tables of a file that predates them are derived once, here
