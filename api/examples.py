"""Example payloads for the OpenAPI document (shown in /docs, checked by the schema tests)."""

from __future__ import annotations

from pydantic import ConfigDict

PRODUCT_ID = "3f2c6d1e-8a4b-5c7d-9e0f-1a2b3c4d5e6f"
CART_ID = "0b7e2f4a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
ORDER_ID = "7d1e2c3b-4a59-5867-9a0b-1c2d3e4f5a6b"
CUSTOMER_ID = "5a4b3c2d-1e0f-5a9b-8c7d-6e5f4a3b2c1d"
KEY_ID = "2e9d8c7b-6a5f-4e3d-8c1b-0a9f8e7d6c5b"
USER_ID = "6c5d4e3f-2a1b-5c9d-8e7f-6a5b4c3d2e1f"

PRODUCT_EXAMPLE = {
    "product_id": PRODUCT_ID, "handle": "stoneware-mug", "title": "Stoneware Mug",
    "description": "Hand-glazed, 350 ml.", "categories": ["mugs"], "currency": "EUR", "prices_include_tax": True,
    "price_from": 1890, "in_stock": True,
    "variants": [{"sku": "MUG-STONE-BLUE", "title": "Blue", "price": 1890, "weight_grams": 420,
                  "tax_class": "standard", "media_urls": [], "available": 37, "in_stock": True}],
}

CART_EXAMPLE = {
    "cart_id": CART_ID, "status": "open", "order_id": None, "customer_id": None, "country": "DE",
    "shipping_method": "standard",
    "lines": [{"sku": "MUG-STONE-BLUE", "product_id": PRODUCT_ID, "title": "Stoneware Mug — Blue", "quantity": 2,
               "unit_price": 1890, "amount": 3780, "tax": 604, "gross": 3780, "tax_class": "standard",
               "weight_grams": 420}],
    "totals": {"currency": "EUR", "prices_include_tax": True, "subtotal": 3780, "shipping": 495, "tax": 683,
               "total": 4275, "weight_grams": 840},
    "shipping_estimate": {"rate_id": "standard", "name": "DHL Paket", "amount": 495, "chosen": True},
    "shipping_options": [{"rate_id": "standard", "name": "DHL Paket", "amount": 495}],
    "updated_at": "2026-11-21T10:15:00Z",
}


def with_examples(*values: dict) -> ConfigDict:
    """`model_config` of a request or response model: no unknown fields, and its examples."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(values)})


def example(value: object, status: int = 200, description: str = "Successful response") -> dict:
    """`responses=` entry giving a route's success response an example."""
    return {status: {"description": description, "content": {"application/json": {"example": value}}}}


# --- admin ------------------------------------------------------------------------------------
STORE_ID = "1c2d3e4f-5a6b-5c7d-8e9f-0a1b2c3d4e5f"
STOCK_ITEM_ID = "9e8d7c6b-5a49-5382-9170-6f5e4d3c2b1a"
AT = "2026-11-21T10:15:00.000000Z"

ADMIN_PRODUCT_SUMMARY_EXAMPLE = {
    "product_id": PRODUCT_ID, "handle": "stoneware-mug", "title": "Stoneware Mug", "status": "active",
    "categories": ["mugs"], "variants": [{"sku": "MUG-STONE-BLUE", "title": "Blue", "price": 1890, "available": 37}],
    "updated_at": AT,
}

ADMIN_PRODUCT_EXAMPLE = {
    "product_id": PRODUCT_ID, "handle": "stoneware-mug", "title": "Stoneware Mug",
    "description": "Hand-glazed, 350 ml.", "categories": ["mugs"], "status": "active",
    "variants": [{"sku": "MUG-STONE-BLUE", "title": "Blue", "price": 1890, "unit_cost": 640, "weight_grams": 420,
                  "tax_class": "standard", "media_urls": []}],
    "version": 4, "created_at": "2026-11-02T09:00:00.000000Z", "updated_at": AT,
}

STOCK_LEVEL_EXAMPLE = {
    "stock_item_id": STOCK_ITEM_ID, "sku": "MUG-STONE-BLUE", "product_id": PRODUCT_ID, "location": "default",
    "on_hand": 40, "reserved": 3, "available": 37, "low_stock": False, "updated_at": AT,
}

ORDER_SUMMARY_EXAMPLE = {
    "order_id": ORDER_ID, "status": "paid", "currency": "EUR", "total": 4275, "refunded": 0,
    "customer_id": CUSTOMER_ID, "email": "ada@example.com", "item_count": 2, "placed_at": AT,
    "paid_at": "2026-11-21T10:16:02.000000Z",
}

ORDER_DETAIL_EXAMPLE = {
    **ORDER_SUMMARY_EXAMPLE, "subtotal": 3780, "shipping": 495, "tax": 683, "paid_amount": 4275, "country": "DE",
    "shipping_method": "standard", "updated_at": "2026-11-21T10:16:02.000000Z",
    "lines": [{"line_no": 1, "sku": "MUG-STONE-BLUE", "product_id": PRODUCT_ID, "title": "Stoneware Mug — Blue",
               "quantity": 2, "unit_price": 1890, "amount": 3780, "tax": 604, "gross": 3780,
               "tax_class": "standard", "unit_cost": 640, "fulfilled": 0}],
}

SHIPPING_ZONE_EXAMPLE = {
    "id": "eu-core", "name": "Germany and neighbours", "countries": ["AT", "DE", "NL"],
    "rates": [
        {"id": "standard", "name": "DHL Paket", "kind": "free_over", "amount": 495, "free_over": 5000},
        {"id": "express", "name": "Express", "kind": "flat", "amount": 1290},
        {"id": "freight", "name": "Freight by weight", "kind": "weight",
         "brackets": [{"up_to_grams": 2000, "amount": 990}, {"up_to_grams": 30000, "amount": 1990}]},
    ],
}

STORE_SETTINGS_EXAMPLE = {
    "store_id": STORE_ID, "slug": "stoneware", "name": "Stoneware & Co.", "currency": "EUR", "currency_locked": True,
    "prices_include_tax": True, "origin_country": "DE", "rounding": "half_up",
    "shipping_zones": [{
        "id": "eu-core", "name": "Germany and neighbours", "countries": ["AT", "DE", "NL"],
        "rates": [{"id": "standard", "name": "DHL Paket", "kind": "free_over", "amount": 495, "brackets": [],
                   "free_over": 5000}],
    }],
    "version": 7, "updated_at": AT,
}

_CHANGE = {"current": 128450, "previous": 101200, "change": 27250, "change_percent": 26.9}
_PERIOD = {
    "start": "2026-11-20T23:00:00Z", "end": "2026-11-21T10:15:00.000001Z", "previous_start": "2026-11-19T23:00:00Z",
    "previous_end": "2026-11-20T10:15:00.000001Z", "revenue": _CHANGE,
    "orders": {"current": 31, "previous": 27, "change": 4, "change_percent": 14.8},
    "average_order_value": {"current": 4144, "previous": 3748, "change": 396, "change_percent": 10.6},
    "new_customers": {"current": 12, "previous": 9, "change": 3, "change_percent": 33.3},
    "returning_customers": {"current": 19, "previous": 18, "change": 1, "change_percent": 5.6},
    "top_products": [{"product_id": PRODUCT_ID, "title": "Stoneware Mug", "units": 44, "revenue": 83160,
                      "previous_units": 30, "previous_revenue": 56700}],
}
DASHBOARD_EXAMPLE = {
    "store_id": STORE_ID, "currency": "EUR", "now": "2026-11-21T10:15:00Z", "tz": "Europe/Berlin",
    "compare": "same_point", "today": {"period": "today", **_PERIOD}, "this_week": {"period": "this_week", **_PERIOD},
    "this_month": {"period": "this_month", **_PERIOD},
}

AUDIT_STATE_EXAMPLE = {
    "aggregate_id": ORDER_ID, "aggregate_type": "order", "version": 2, "timestamp": "2026-11-21T10:16:02.000000Z",
    "created_at": AT, "state": {"store_id": STORE_ID, "status": "paid", "currency": "EUR", "paid_amount": 4275},
}

AUDIT_EVENT_EXAMPLE = {
    "event_id": "6b5a4c3d-2e1f-5a0b-9c8d-7e6f5a4b3c2d", "position": None, "store_id": STORE_ID,
    "aggregate_type": "order", "aggregate_id": ORDER_ID, "version": 2, "type": "trafi.order.paid.v1",
    "occurred_at": "2026-11-21T10:16:02.000000Z", "data": {"amount": 4275, "reference": "psp_8f2k"},
}
