"""Admin commerce routes in-process: catalogue, stock, orders, store settings, dashboard, audit.

Each family: its behaviour, its 4xx answers to bad input, tenant isolation (the other
store's owner key on our ids is a 404, never our data) and permissions (a key
without the route's scope is a 403).
"""

from __future__ import annotations

import base64
from uuid import uuid4

from api.bootstrap import create_api_key
from tests.api.test_storefront import _ready_cart


def _head(api) -> int:
    """The log's last position: as `min_position`, the read models reflect the fixture's own writes."""
    return api.services.app.recorder.max_notification_id()


def _key(api, store, *scopes: str) -> dict[str, str]:
    token = create_api_key(api.bus, store.ctx, api.services.settings.secret_key, kind="secret",
                           name=f"limited {uuid4().hex[:6]}", scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def _placed_order(api, *, qty: int = 2, email: str = "buyer@example.com") -> dict:
    cart_id, _ = _ready_cart(api, qty=qty, email=email)
    placed = api.client.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=api.store.storefront)
    assert placed.status_code == 201, placed.text
    return {**placed.json(), "position": placed.headers["X-Trafi-Position"]}


def _problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if code is not None:
        assert response.json()["code"] == code, response.json()
    return response.json()


# --- catalogue ---------------------------------------------------------------------------------

def test_a_product_is_created_changed_and_read_back_with_its_costs(api):
    c, h = api.client, api.store.admin
    created = c.post("/v1/admin/products", headers=h,
                     json={"handle": "teapot", "title": "Teapot", "description": "1 l", "categories": ["tea"]})
    assert created.status_code == 201
    product_id = created.json()["product_id"]
    variant = c.post(f"/v1/admin/products/{product_id}/variants", headers=h,
                     json={"sku": "POT-1", "title": "White", "price": 3900, "unit_cost": 1500, "weight_grams": 900})
    assert variant.status_code == 201
    assert variant.json()["product_id"] == product_id and variant.json()["sku"] == "POT-1"
    base = f"/v1/admin/products/{product_id}"
    assert c.put(f"{base}/variants/POT-1/price", json={"price": 4200}, headers=h).json() == {
        "product_id": product_id, "sku": "POT-1"}
    assert c.put(f"{base}/variants/POT-1/cost", json={"unit_cost": 1600}, headers=h).status_code == 200
    assert c.put(f"{base}/details", json={"title": "Teapot XL", "categories": ["tea", "kitchen"]},
                 headers=h).status_code == 200
    published = c.put(f"{base}/status", json={"status": "active"}, headers=h)
    assert published.status_code == 200

    # One product comes from the write side: current at once, costs included.
    product = c.get(base, headers=h).json()
    assert product["title"] == "Teapot XL" and product["status"] == "active"
    assert product["categories"] == ["kitchen", "tea"] and product["handle"] == "teapot"
    assert product["variants"] == [{"sku": "POT-1", "title": "White", "price": 4200, "unit_cost": 1600,
                                    "weight_grams": 900, "tax_class": "standard", "media_urls": []}]

    # The list is the read model: read your write with its position; drafts are listed too.
    draft = c.post("/v1/admin/products", json={"handle": "saucer", "title": "Saucer"}, headers=h)
    position = draft.headers["X-Trafi-Position"]
    listed = c.get("/v1/admin/products", params={"min_position": position}, headers=h).json()["items"]
    by_handle = {p["handle"]: p for p in listed}
    assert set(by_handle) == {"book", "mug", "saucer", "teapot", "tee"}
    assert by_handle["saucer"]["status"] == "draft" and by_handle["saucer"]["variants"] == []
    assert by_handle["teapot"]["variants"] == [{"sku": "POT-1", "title": "White", "price": 4200, "available": 0}]
    assert "unit_cost" not in str(listed)
    drafts = c.get("/v1/admin/products", params={"status": "draft", "min_position": position}, headers=h).json()
    assert [p["handle"] for p in drafts["items"]] == ["saucer"]


def test_the_product_list_pages_by_handle(api):
    h, position = api.store.admin, _head(api)
    first = api.client.get("/v1/admin/products", params={"limit": 2, "min_position": position}, headers=h).json()
    assert [p["handle"] for p in first["items"]] == ["book", "mug"] and first["next_cursor"]
    rest = api.client.get("/v1/admin/products", params={"limit": 2, "cursor": first["next_cursor"]}, headers=h).json()
    assert [p["handle"] for p in rest["items"]] == ["tee"] and rest["next_cursor"] is None


def test_catalogue_input_errors_are_4xx_problems(api):
    c, h = api.client, api.store.admin
    mug = api.store.shop.products["MUG-1"]
    _problem(c.post("/v1/admin/products", json={"handle": "mug", "title": "Again"}, headers=h), 409, "product.exists")
    _problem(c.post("/v1/admin/products", json={"handle": "Not A Handle", "title": "X"}, headers=h), 422,
             "product.invalid_handle")
    _problem(c.post("/v1/admin/products", json={"handle": "x", "title": "   "}, headers=h), 422, "product.invalid_title")
    _problem(c.post("/v1/admin/products", json={"handle": "x", "title": "X\u0000"}, headers=h), 422)
    _problem(c.post("/v1/admin/products", json={"handle": "x", "title": "X", "store_id": str(uuid4())}, headers=h), 422)
    variants = f"/v1/admin/products/{mug}/variants"
    _problem(c.post(variants, json={"sku": "MUG-1", "price": 1, "unit_cost": 1}, headers=h), 422, "product.duplicate_sku")
    _problem(c.post(variants, json={"sku": "BOOK-1", "price": 1, "unit_cost": 1}, headers=h), 422,
             "product.duplicate_sku")  # a SKU belongs to one product of the store
    bad = _problem(c.post(variants, json={"sku": "MUG-2", "price": -1, "unit_cost": 10**13, "tax_class": "luxury"},
                          headers=h), 422)
    assert {e["field"] for e in bad["errors"]} == {"body.price", "body.unit_cost", "body.tax_class"}
    _problem(c.put(f"/v1/admin/products/{mug}/variants/NOPE-1/price", json={"price": 5}, headers=h), 422,
             "product.unknown_sku")
    _problem(c.put(f"/v1/admin/products/{mug}/variants/bad%20sku/price", json={"price": 5}, headers=h), 422)
    _problem(c.put(f"/v1/admin/products/{mug}/status", json={"status": "deleted"}, headers=h), 422)
    assert c.put(f"/v1/admin/products/{mug}/status", json={"status": "archived"}, headers=h).status_code == 200
    _problem(c.put(f"/v1/admin/products/{mug}/status", json={"status": "active"}, headers=h), 409,
             "product.invalid_transition")
    fresh = c.post("/v1/admin/products", json={"handle": "empty", "title": "Empty"}, headers=h).json()["product_id"]
    _problem(c.put(f"/v1/admin/products/{fresh}/status", json={"status": "active"}, headers=h), 422,
             "product.no_variants")
    _problem(c.get(f"/v1/admin/products/{uuid4()}", headers=h), 404, "product.not_found")
    _problem(c.get("/v1/admin/products/not-a-uuid", headers=h), 422)
    _problem(c.get("/v1/admin/products", params={"status": "deleted"}, headers=h), 422)
    _problem(c.get("/v1/admin/products", params={"cursor": "garbage!"}, headers=h), 422, "query.invalid_cursor")
    _problem(c.get("/v1/admin/products", params={"limit": 0}, headers=h), 422)


# --- stock -------------------------------------------------------------------------------------

def test_stock_is_received_counted_and_listed(api):
    c, h = api.client, api.store.admin
    received = c.post("/v1/admin/stock/MUG-1/receive", json={"quantity": 5, "reason": "delivery"}, headers=h)
    assert received.status_code == 200 and received.json() == {"sku": "MUG-1", "on_hand": 105, "available": 105}
    counted = c.post("/v1/admin/stock/BOOK-1/adjust", json={"on_hand": 3}, headers=h)
    assert counted.json() == {"sku": "BOOK-1", "on_hand": 3, "available": 3}
    position = counted.headers["X-Trafi-Position"]
    level = c.get("/v1/admin/stock/BOOK-1", params={"min_position": position}, headers=h).json()
    assert level["on_hand"] == 3 and level["low_stock"] is True
    assert c.get("/v1/admin/stock/BOOK-1", params={"threshold": 2}, headers=h).json()["low_stock"] is False
    levels = c.get("/v1/admin/stock", params={"min_position": position}, headers=h).json()
    assert [(l["sku"], l["on_hand"]) for l in levels["items"]] == [("BOOK-1", 3), ("MUG-1", 105), ("TEE-M", 100)]
    page = c.get("/v1/admin/stock", params={"limit": 2}, headers=h).json()
    assert len(page["items"]) == 2 and c.get("/v1/admin/stock", params={"cursor": page["next_cursor"]},
                                             headers=h).json()["items"][0]["sku"] == "TEE-M"
    low = c.get("/v1/admin/stock/alerts/low-stock", params={"min_position": position}, headers=h).json()
    assert low["threshold"] == 5 and [i["sku"] for i in low["items"]] == ["BOOK-1"]


def test_stock_input_errors_are_4xx_problems(api):
    c, h = api.client, api.store.admin
    order = _placed_order(api, qty=2)  # reserves 2 MUG-1
    assert order["order_id"]
    _problem(c.post("/v1/admin/stock/MUG-1/adjust", json={"on_hand": 1}, headers=h), 409, "stock.insufficient")
    _problem(c.post("/v1/admin/stock/NO-SUCH/receive", json={"quantity": 1}, headers=h), 404, "stock_item.not_found")
    _problem(c.get("/v1/admin/stock/NO-SUCH", headers=h), 404, "stock_item.not_found")
    _problem(c.get("/v1/admin/stock/%00", headers=h), 422)
    _problem(c.post("/v1/admin/stock/MUG-1/receive", json={"quantity": 0}, headers=h), 422)
    _problem(c.post("/v1/admin/stock/MUG-1/receive", json={"quantity": 10**9}, headers=h), 422)
    _problem(c.post("/v1/admin/stock/MUG-1/adjust", json={"on_hand": -1}, headers=h), 422)
    _problem(c.get("/v1/admin/stock", params={"threshold": -1}, headers=h), 422)
    nul_cursor = base64.urlsafe_b64encode(b'["\\u0000"]').decode().rstrip("=")
    _problem(c.get("/v1/admin/stock", params={"cursor": nul_cursor}, headers=h), 422, "query.invalid_cursor")


# --- orders ------------------------------------------------------------------------------------

def test_an_order_goes_through_payment_fulfilment_delivery_and_refund(api):
    c, h = api.client, api.store.admin
    order = _placed_order(api, qty=2, email="Lifecycle@Example.com")
    order_id, base = order["order_id"], f"/v1/admin/orders/{order['order_id']}"

    listed = c.get("/v1/admin/orders", headers=h, params={
        "status": "pending_payment", "email": "lifecycle@example.com", "min_position": order["position"]}).json()
    assert [o["order_id"] for o in listed["items"]] == [order_id] and listed["items"][0]["total"] == order["total"]
    detail = c.get(base, params={"min_position": order["position"]}, headers=h).json()
    assert detail["status"] == "pending_payment" and detail["lines"][0]["quantity"] == 2
    assert detail["lines"][0]["unit_cost"] == 600  # admins see costs

    _problem(c.post(f"{base}/mark-paid", json={"amount": order["total"] - 1, "reference": "psp-1"}, headers=h),
             422, "order.amount_mismatch")
    _problem(c.post(f"{base}/fulfil", json={"lines": {"MUG-1": 1}}, headers=h), 409, "order.invalid_transition")
    paid = c.post(f"{base}/mark-paid", json={"amount": order["total"], "reference": "psp-1"}, headers=h)
    assert paid.json() == {"order_id": order_id, "status": "paid"}
    partly = c.post(f"{base}/fulfil", json={"lines": {"MUG-1": 1}, "carrier": "DHL"}, headers=h)
    assert partly.json()["status"] == "partially_fulfilled"
    _problem(c.post(f"{base}/mark-delivered", headers=h), 409, "order.invalid_transition")
    _problem(c.post(f"{base}/fulfil", json={"lines": {"MUG-1": 2}}, headers=h), 422, "order.invalid_fulfilment")
    _problem(c.post(f"{base}/fulfil", json={"lines": {"TEE-M": 1}}, headers=h), 422, "order.invalid_fulfilment")
    _problem(c.post(f"{base}/fulfil", json={"lines": {}}, headers=h), 422)
    assert c.post(f"{base}/fulfil", json={"lines": {"MUG-1": 1}}, headers=h).json()["status"] == "fulfilled"
    assert c.post(f"{base}/mark-delivered", headers=h).json()["status"] == "delivered"
    _problem(c.post(f"{base}/cancel", json={"reason": "too late"}, headers=h), 409, "order.invalid_transition")
    _problem(c.post(f"{base}/refund", json={"amount": order["total"] + 1}, headers=h), 422, "order.invalid_refund")
    refunded = c.post(f"{base}/refund", json={"amount": 500, "reason": "chipped"}, headers=h)
    assert refunded.json() == {"order_id": order_id, "status": "partially_refunded", "refunded": 500, "amount": 500,
                               "refund_id": refunded.json()["refund_id"], "refund_status": "succeeded",
                               "refundable": order["total"] - 500}

    after = c.get(base, params={"min_position": refunded.headers["X-Trafi-Position"]}, headers=h).json()
    assert after["status"] == "partially_refunded" and after["refunded"] == 500 and after["lines"][0]["fulfilled"] == 2
    stock = c.get("/v1/admin/stock/MUG-1", params={"min_position": refunded.headers["X-Trafi-Position"]}, headers=h)
    assert stock.json()["on_hand"] == 98 and stock.json()["reserved"] == 0


def test_cancelling_releases_the_reserved_stock_and_needs_its_own_permission(api):
    c = api.client
    order = _placed_order(api, qty=3)
    base = f"/v1/admin/orders/{order['order_id']}"
    writer = _key(api, api.store, "orders:read", "orders:write")
    _problem(c.post(f"{base}/cancel", json={}, headers=writer), 403, "auth.forbidden")
    cancelled = c.post(f"{base}/cancel", json={"reason": "fraud check"}, headers=_key(api, api.store, "orders:cancel"))
    assert cancelled.json()["status"] == "cancelled"
    position = cancelled.headers["X-Trafi-Position"]
    assert c.get("/v1/admin/stock/MUG-1", params={"min_position": position},
                 headers=api.store.admin).json()["reserved"] == 0
    _problem(c.post(f"{base}/mark-paid", json={"amount": order["total"], "reference": "late"}, headers=writer),
             409, "order.invalid_transition")
    listed = c.get("/v1/admin/orders", params={"status": ["cancelled", "refunded"], "min_position": position},
                   headers=writer).json()
    assert [o["order_id"] for o in listed["items"]] == [order["order_id"]]


def test_the_order_list_pages_and_filters_by_date(api):
    c, h = api.client, api.store.admin
    first, second = _placed_order(api, qty=1), _placed_order(api, qty=1)
    params = {"limit": 1, "min_position": second["position"]}
    page = c.get("/v1/admin/orders", params=params, headers=h).json()
    assert [o["order_id"] for o in page["items"]] == [second["order_id"]]
    rest = c.get("/v1/admin/orders", params={"limit": 1, "cursor": page["next_cursor"]}, headers=h).json()
    assert [o["order_id"] for o in rest["items"]] == [first["order_id"]]
    placed_at = page["items"][0]["placed_at"]
    since = c.get("/v1/admin/orders", params={"placed_from": placed_at}, headers=h).json()["items"]
    assert [o["order_id"] for o in since] == [second["order_id"]]
    assert c.get("/v1/admin/orders", params={"placed_to": "2000-01-01T00:00:00Z"}, headers=h).json()["items"] == []


def test_order_input_errors_are_4xx_problems(api):
    c, h = api.client, api.store.admin
    _problem(c.get("/v1/admin/orders", params={"status": "lost"}, headers=h), 422)
    _problem(c.get("/v1/admin/orders", params={"placed_from": "2026-01-01T00:00:00"}, headers=h), 422,
             "query.naive_datetime")
    _problem(c.get("/v1/admin/orders", params={"placed_from": "0001-01-01T00:00:00+14:00"}, headers=h), 422,
             "query.datetime_out_of_range")
    _problem(c.get("/v1/admin/orders", params={"placed_from": "yesterday"}, headers=h), 422)
    _problem(c.get("/v1/admin/orders", params={"placed_from": "2026-02-01T00:00:00Z",
                                                "placed_to": "2026-01-01T00:00:00Z"}, headers=h), 422,
             "query.invalid_range")
    _problem(c.get("/v1/admin/orders", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=h), 422, "query.invalid_cursor")
    _problem(c.get("/v1/admin/orders", params={"email": "a\u0000b@example.com"}, headers=h), 422)
    _problem(c.get("/v1/admin/orders", params={"limit": 201}, headers=h), 422)
    _problem(c.get(f"/v1/admin/orders/{uuid4()}", headers=h), 404, "order.not_found")
    _problem(c.post(f"/v1/admin/orders/{uuid4()}/mark-paid", json={"amount": 1, "reference": "x"}, headers=h), 404,
             "order.not_found")
    _problem(c.post(f"/v1/admin/orders/{uuid4()}/refund", json={"amount": 0}, headers=h), 422)
    _problem(c.post(f"/v1/admin/orders/{uuid4()}/fulfil", json={"lines": {"MUG-1": 10**6}}, headers=h), 422)


# --- store settings ----------------------------------------------------------------------------

ZONE = {"id": "dach", "name": "DACH", "countries": ["DE", "AT"], "rates": [
    {"id": "std", "name": "Standard", "kind": "flat", "amount": 590},
    {"id": "heavy", "name": "By weight", "kind": "weight",
     "brackets": [{"up_to_grams": 1000, "amount": 490}, {"up_to_grams": 20000, "amount": 1490}]},
    {"id": "free", "name": "Free over 50", "kind": "free_over", "amount": 490, "free_over": 5000},
]}


def test_store_settings_read_back_at_once(api):
    c, h = api.client, api.store.admin
    settings = c.get("/v1/admin/store", headers=h).json()
    assert settings["store_id"] == str(api.store.keys.store_id) and settings["currency"] == "EUR"
    assert settings["currency_locked"] is True and len(settings["shipping_zones"]) == 2
    tax = c.put("/v1/admin/store/tax", json={"prices_include_tax": False, "origin_country": "AT",
                                             "rounding": "half_even"}, headers=h)
    assert tax.status_code == 200 and tax.json() == {"store_id": str(api.store.keys.store_id)}
    zones = c.put("/v1/admin/store/shipping-zones", json={"zones": [ZONE]}, headers=h)
    assert zones.status_code == 200
    settings = c.get("/v1/admin/store", headers=h).json()  # the write side: no min_position needed
    assert (settings["prices_include_tax"], settings["origin_country"], settings["rounding"]) == (False, "AT", "half_even")
    [zone] = settings["shipping_zones"]
    assert zone["countries"] == ["AT", "DE"] and [r["id"] for r in zone["rates"]] == ["std", "heavy", "free"]
    assert zone["rates"][1]["brackets"][1] == {"up_to_grams": 20000, "amount": 1490}
    assert zone["rates"][2]["free_over"] == 5000
    assert c.get("/v1/admin/store", headers=api.other.admin).json()["origin_country"] == "DE"  # theirs is untouched


def test_bad_settings_are_422_naming_the_field_and_the_currency_is_locked(api):
    c, h = api.client, api.store.admin
    url = "/v1/admin/store/shipping-zones"
    weightless = {**ZONE, "rates": [{"id": "w", "name": "W", "kind": "weight", "brackets": []}]}
    assert _problem(c.put(url, json={"zones": [weightless]}, headers=h), 422)["field"] == "body.zones.0.rates.0.weight.brackets"
    unknown = {**ZONE, "rates": [{"id": "x", "name": "X", "kind": "drone", "amount": 1}]}
    assert _problem(c.put(url, json={"zones": [unknown]}, headers=h), 422)["field"] == "body.zones.0.rates.0"
    flat_with_threshold = {**ZONE, "rates": [{"id": "x", "name": "X", "kind": "flat", "amount": 1, "free_over": 9}]}
    assert "free_over" in _problem(c.put(url, json={"zones": [flat_with_threshold]}, headers=h), 422)["field"]
    assert _problem(c.put(url, json={"zones": [{**ZONE, "countries": ["de"]}]}, headers=h),
                    422)["field"] == "body.zones.0.countries.0"
    _problem(c.put(url, json={"zones": [{**ZONE, "countries": ["US"]}]}, headers=h), 422, "tax.unknown_country")
    _problem(c.put(url, json={"zones": [ZONE, {**ZONE, "id": "again", "countries": ["DE"]}]}, headers=h), 422,
             "shipping.overlapping_zones")
    decreasing = {**ZONE, "rates": [{"id": "w", "name": "W", "kind": "weight", "brackets": [
        {"up_to_grams": 2000, "amount": 1}, {"up_to_grams": 1000, "amount": 2}]}]}
    _problem(c.put(url, json={"zones": [decreasing]}, headers=h), 422, "shipping.invalid_brackets")
    twice = {**ZONE, "rates": [ZONE["rates"][0], ZONE["rates"][0]]}
    _problem(c.put(url, json={"zones": [twice]}, headers=h), 422, "shipping.duplicate_rate")
    _problem(c.put("/v1/admin/store/tax", json={"prices_include_tax": True, "origin_country": "XX"}, headers=h), 422,
             "tax.unknown_country")
    _problem(c.put("/v1/admin/store/tax", json={"prices_include_tax": True, "origin_country": "DE",
                                                "rounding": "up"}, headers=h), 422)
    _problem(c.put("/v1/admin/store/currency", json={"currency": "USD"}, headers=h), 409, "store.currency_locked")
    _problem(c.put("/v1/admin/store/currency", json={"currency": "usd"}, headers=h), 422)
    assert len(c.get("/v1/admin/store", headers=h).json()["shipping_zones"]) == 2  # nothing was changed


# --- dashboard ---------------------------------------------------------------------------------

def test_the_dashboard_counts_paid_orders_in_the_merchants_time_zone(api):
    c, h = api.client, api.store.admin
    order = _placed_order(api, qty=1)
    paid = c.post(f"/v1/admin/orders/{order['order_id']}/mark-paid", json={"amount": order["total"], "reference": "p"},
                  headers=h)
    board = c.get("/v1/admin/dashboard", headers=h, params={
        "tz": "Europe/Berlin", "compare": "full", "top_products": 3, "min_position": paid.headers["X-Trafi-Position"]})
    assert board.status_code == 200, board.text
    body = board.json()
    assert body["tz"] == "Europe/Berlin" and body["compare"] == "full" and body["currency"] == "EUR"
    assert body["today"]["orders"]["current"] == 1 and body["today"]["revenue"]["current"] == order["total"]
    assert body["this_month"]["top_products"][0]["product_id"] == str(api.store.shop.products["MUG-1"])
    theirs = c.get("/v1/admin/dashboard", params={"min_position": paid.headers["X-Trafi-Position"]},
                   headers=api.other.admin).json()
    assert theirs["today"]["orders"]["current"] == 0


def test_dashboard_input_errors_are_422(api):
    c, h = api.client, api.store.admin
    _problem(c.get("/v1/admin/dashboard", params={"tz": "Mars/Olympus_Mons"}, headers=h), 422, "query.unknown_time_zone")
    _problem(c.get("/v1/admin/dashboard", params={"tz": "Europe"}, headers=h), 422, "query.unknown_time_zone")
    _problem(c.get("/v1/admin/dashboard", params={"tz": "../../etc/passwd"}, headers=h), 422)
    _problem(c.get("/v1/admin/dashboard", params={"tz": "zone.tab"}, headers=h), 422)
    _problem(c.get("/v1/admin/dashboard", params={"compare": "yesterday"}, headers=h), 422)
    _problem(c.get("/v1/admin/dashboard", params={"top_products": 0}, headers=h), 422)


# --- audit -------------------------------------------------------------------------------------

def test_audit_shows_an_aggregate_at_a_version_or_a_moment_and_its_history(api):
    c, h = api.client, api.store.admin
    order = _placed_order(api, qty=1)
    base = f"/v1/admin/audit/{order['order_id']}"
    c.post(f"/v1/admin/orders/{order['order_id']}/mark-paid", json={"amount": order["total"], "reference": "r-1"},
           headers=h)
    now = c.get(f"{base}/state", headers=h).json()
    assert now["aggregate_type"] == "order" and now["version"] == 2 and now["state"]["status"] == "paid"
    assert now["state"]["token_hash"] == "[redacted]"
    first = c.get(f"{base}/state", params={"version": 1}, headers=h).json()
    assert first["state"]["status"] == "pending_payment"
    at_creation = c.get(f"{base}/state", params={"as_of": first["timestamp"]}, headers=h).json()
    assert at_creation["version"] == 1
    _problem(c.get(f"{base}/state", params={"as_of": "2000-01-01T00:00:00Z"}, headers=h), 404, "aggregate.not_found")
    _problem(c.get(f"{base}/state", params={"version": 3}, headers=h), 404, "aggregate.not_found")

    page = c.get(f"{base}/history", params={"limit": 1}, headers=h).json()
    assert [(e["version"], e["type"]) for e in page["items"]] == [(1, "trafi.order.placed.v1")]
    assert page["items"][0]["store_id"] == str(api.store.keys.store_id)
    rest = c.get(f"{base}/history", params={"cursor": page["next_cursor"]}, headers=h).json()
    assert [e["type"] for e in rest["items"]] == ["trafi.order.paid.v1"] and rest["next_cursor"] is None
    # attempt/at name a provider attempt; a payment recorded by hand has neither.
    assert rest["items"][0]["data"] == {"amount": order["total"], "reference": "r-1", "attempt": None, "at": None}

    owner = c.get(f"/v1/admin/audit/{api.store.keys.owner_id}/history", headers=h).json()["items"]
    assert owner[0]["data"]["password_hash"] == "[redacted]"
    store = c.get(f"/v1/admin/audit/{api.store.keys.store_id}/state", headers=h).json()
    assert store["aggregate_type"] == "store" and store["state"]["currency"] == "EUR"


def test_audit_input_errors_are_4xx_problems(api):
    c, h = api.client, api.store.admin
    base = f"/v1/admin/audit/{api.store.shop.products['MUG-1']}"
    _problem(c.get(f"{base}/state", params={"as_of": "last tuesday"}, headers=h), 422, "audit.invalid_moment")
    _problem(c.get(f"{base}/state", params={"as_of": "0001-01-01T00:00:00+14:00"}, headers=h), 422,
             "audit.invalid_moment")
    assert c.get(f"{base}/state", params={"as_of": "9999-12-31T23:59:59-14:00"}, headers=h).status_code in (404, 422)
    _problem(c.get(f"{base}/state", params={"as_of": "2026-01-01T00:00:00Z", "version": 1}, headers=h), 422,
             "audit.version_and_moment")
    _problem(c.get(f"{base}/state", params={"version": 0}, headers=h), 422)
    _problem(c.get(f"{base}/state", params={"version": 2**60}, headers=h), 422)
    _problem(c.get(f"{base}/history", params={"limit": 10_000}, headers=h), 422)
    _problem(c.get(f"{base}/history", params={"cursor": "WyJ4Il0"}, headers=h), 422, "query.invalid_cursor")  # ["x"]
    _problem(c.get(f"/v1/admin/audit/{uuid4()}/state", headers=h), 404, "aggregate.not_found")
    _problem(c.get(f"/v1/admin/audit/{uuid4()}/history", headers=h), 404, "aggregate.not_found")


# --- every family: tenancy, permissions, idempotency -------------------------------------------

def test_another_stores_ids_are_not_found_on_every_admin_route(api):
    c, ours, theirs = api.client, api.store.admin, api.other.admin
    order = _placed_order(api, qty=1)
    product_id = str(api.store.shop.products["MUG-1"])
    product = api.client.post("/v1/admin/products", json={"handle": "ours-only", "title": "Ours"}, headers=ours)
    only_ours = product.json()["product_id"]
    assert c.post(f"/v1/admin/products/{only_ours}/variants", json={"sku": "OURS-1", "price": 1, "unit_cost": 1},
                  headers=ours).status_code == 201
    requests = [
        ("GET", f"/v1/admin/products/{product_id}", None),
        ("PUT", f"/v1/admin/products/{product_id}/details", {"title": "Hijacked"}),
        ("PUT", f"/v1/admin/products/{product_id}/status", {"status": "archived"}),
        ("POST", f"/v1/admin/products/{product_id}/variants", {"sku": "THEIRS-9", "price": 1, "unit_cost": 1}),
        ("PUT", f"/v1/admin/products/{product_id}/variants/MUG-1/price", {"price": 1}),
        ("PUT", f"/v1/admin/products/{product_id}/variants/MUG-1/cost", {"unit_cost": 1}),
        ("GET", "/v1/admin/stock/OURS-1", None),
        ("POST", "/v1/admin/stock/OURS-1/receive", {"quantity": 1}),
        ("POST", "/v1/admin/stock/OURS-1/adjust", {"on_hand": 1}),
        ("GET", f"/v1/admin/orders/{order['order_id']}", None),
        ("POST", f"/v1/admin/orders/{order['order_id']}/mark-paid", {"amount": order["total"], "reference": "x"}),
        ("POST", f"/v1/admin/orders/{order['order_id']}/fulfil", {"lines": {"MUG-1": 1}}),
        ("POST", f"/v1/admin/orders/{order['order_id']}/mark-delivered", None),
        ("POST", f"/v1/admin/orders/{order['order_id']}/cancel", {}),
        ("POST", f"/v1/admin/orders/{order['order_id']}/refund", {"amount": 1}),
    ]
    for aggregate_id in (order["order_id"], product_id, api.store.keys.store_id, api.store.keys.owner_id):
        requests += [("GET", f"/v1/admin/audit/{aggregate_id}/state", None),
                     ("GET", f"/v1/admin/audit/{aggregate_id}/history", None)]
    missing = c.get(f"/v1/admin/audit/{uuid4()}/state", headers=theirs).json()
    for method, url, body in requests:
        response = c.request(method, url, json=body, headers=theirs)
        assert response.status_code == 404, (method, url, response.status_code, response.text)
        problem = response.json()
        assert problem["code"].endswith(".not_found") and "errors" not in problem  # a problem, no data of ours
        if "/audit/" in url:  # indistinguishable from an id that does not exist
            assert {k: v for k, v in response.json().items() if k not in ("detail", "reason", "request_id")} == {
                k: v for k, v in missing.items() if k not in ("detail", "reason", "request_id")}

    # Lists show their own store only; our order and product are untouched.
    position = _head(api)
    assert c.get("/v1/admin/orders", params={"min_position": position}, headers=theirs).json()["items"] == []
    their_handles = {p["handle"] for p in c.get("/v1/admin/products", params={"min_position": position},
                                               headers=theirs).json()["items"]}
    assert their_handles == {"book", "mug", "tee"}
    assert "OURS-1" not in c.get("/v1/admin/stock", params={"min_position": position}, headers=theirs).text
    assert c.get(f"/v1/admin/products/{product_id}", headers=ours).json()["title"] == "Mug"
    assert c.get(f"/v1/admin/orders/{order['order_id']}", params={"min_position": position},
                 headers=ours).json()["status"] == "pending_payment"


def test_a_key_without_the_routes_permission_is_refused(api):
    c = api.client
    catalog_reader = _key(api, api.store, "catalog:read")
    assert c.get("/v1/admin/products", headers=catalog_reader).status_code == 200
    _problem(c.post("/v1/admin/products", json={"handle": "nope", "title": "Nope"}, headers=catalog_reader), 403,
             "auth.forbidden")
    viewer = _key(api, api.store, "catalog:read", "stock:read", "orders:read", "customers:read", "settings:read",
                  "dashboard:read")  # a viewer's scopes: every read but audit
    # The read models have seen the store (the dashboard's is a 404 until they have).
    seeded = {"min_position": api.services.app.recorder.max_notification_id()}
    for url in ("/v1/admin/products", "/v1/admin/stock", "/v1/admin/stock/alerts/low-stock", "/v1/admin/orders",
                "/v1/admin/store", "/v1/admin/dashboard"):
        assert c.get(url, params=seeded, headers=viewer).status_code == 200, url
    order_id = _placed_order(api, qty=1)["order_id"]
    refused = [
        ("GET", f"/v1/admin/audit/{order_id}/state", None),
        ("GET", f"/v1/admin/audit/{order_id}/history", None),
        ("POST", "/v1/admin/stock/MUG-1/receive", {"quantity": 1}),
        ("POST", f"/v1/admin/orders/{order_id}/mark-paid", {"amount": 1, "reference": "x"}),
        ("POST", f"/v1/admin/orders/{order_id}/cancel", {}),
        ("PUT", "/v1/admin/store/tax", {"prices_include_tax": True, "origin_country": "DE"}),
        ("PUT", "/v1/admin/store/currency", {"currency": "EUR"}),
        ("PUT", f"/v1/admin/products/{api.store.shop.products['MUG-1']}/variants/MUG-1/cost", {"unit_cost": 1}),
    ]
    for method, url, body in refused:
        _problem(c.request(method, url, json=body, headers=viewer), 403, "auth.forbidden")
    _problem(c.get("/v1/admin/products", headers=api.store.storefront), 403, "auth.wrong_key_kind")


def test_an_admin_post_replays_with_the_same_idempotency_key(api):
    c = api.client
    headers = {**api.store.admin, "Idempotency-Key": "receive-delivery-42"}
    first = c.post("/v1/admin/stock/TEE-M/receive", json={"quantity": 7}, headers=headers)
    again = c.post("/v1/admin/stock/TEE-M/receive", json={"quantity": 7}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"sku": "TEE-M", "on_hand": 107, "available": 107}  # received once
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    _problem(c.post("/v1/admin/stock/TEE-M/receive", json={"quantity": 8}, headers=headers), 422,
             "idempotency.key_reused")

    created_headers = {**api.store.admin, "Idempotency-Key": "create-lamp"}
    created = c.post("/v1/admin/products", json={"handle": "lamp", "title": "Lamp"}, headers=created_headers)
    replayed = c.post("/v1/admin/products", json={"handle": "lamp", "title": "Lamp"}, headers=created_headers)
    assert created.status_code == replayed.status_code == 201 and replayed.json() == created.json()
    assert replayed.headers["Idempotent-Replayed"] == "true"
