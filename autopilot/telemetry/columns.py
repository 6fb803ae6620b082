"""The shape of one accepted storefront event as the telemetry log stores and returns it.

This is the contract between ingestion (POST /v1/events writes rows) and the warehouse feeder
(reads them in position order). Identifiers are NULL when the visitor gave no analytics consent.
Times are integer microseconds since the Unix epoch, UTC: cheap to store, to compare and to hand
to Arrow/DuckDB as timestamps.
"""

from __future__ import annotations

# Storefront event kinds (AUTOPILOT.md §1). A `checkout_step` row says which step in CHECKOUT_STEP.
# These are what browsers send (POST /v1/events accepts exactly these).
CLIENT_KINDS = ("page_view", "product_view", "add_to_cart", "checkout_start", "checkout_step", "checkout_complete")
# Rows only the server appends. `exposure` (AUTOPILOT.md §4): a visitor's first evaluation of a flag in
# treatment or control — visitor_id, occurred_at_us, `variant` = the arm, `properties` = {"flag_key": …}
# (autopilot/flags/exposures.py). They are no storefront activity: no funnel step, session or page view.
SERVER_KINDS = ("exposure",)
KINDS = CLIENT_KINDS + SERVER_KINDS
EXPOSURE = "exposure"
CHECKOUT_STEPS = ("shipping", "payment")

TELEMETRY_COLUMNS = (
    "position",        # BIGINT  gap-free order of acceptance; the feeder's tracking position
    "store_id",        # TEXT    uuid
    "event_id",        # TEXT    client-generated; unique per store (duplicates are not stored)
    "kind",            # TEXT    one of KINDS
    "occurred_at_us",  # BIGINT  when it happened in the browser
    "received_at_us",  # BIGINT  when the server accepted it
    "session_id",      # TEXT NULL
    "visitor_id",      # TEXT NULL
    "customer_id",     # TEXT NULL
    "device",          # TEXT NULL  desktop | mobile | tablet
    "country",         # TEXT NULL  ISO 3166-1 alpha-2
    "traffic_source",  # TEXT NULL  utm_source, else the referrer's host, else "direct"
    "url",             # TEXT NULL  without query string when there is no analytics consent
    "referrer",        # TEXT NULL
    "product_id",      # TEXT NULL
    "variant",         # TEXT NULL  the product's variant; of an `exposure`: the arm, treatment | control
    "sku",             # TEXT NULL
    "quantity",        # INTEGER NULL
    "price_minor",     # BIGINT NULL  unit price, minor units
    "currency",        # TEXT NULL   ISO 4217
    "order_id",        # TEXT NULL
    "value_minor",     # BIGINT NULL  checkout_complete: order value, minor units
    "checkout_step",   # TEXT NULL  one of CHECKOUT_STEPS
    "properties",      # TEXT NULL  JSON object, free; of an `exposure`: {"flag_key": …}
)
