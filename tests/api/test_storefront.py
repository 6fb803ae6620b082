"""Storefront routes in-process: carts, checkout, order status, idempotency and tenancy."""

from __future__ import annotations

from uuid import uuid4

from tests.factories import ADDRESS_DE


def _ready_cart(api, store=None, *, qty: int = 1, email: str = "buyer@example.com") -> tuple[str, str]:
    """A cart ready to check out, and the position of its last write."""
    store = store or api.store
    c, h = api.client, store.storefront
    cart_id = c.post("/v1/carts", json={"currency": "EUR"}, headers=h).json()["cart_id"]
    product_id = str(store.shop.products["MUG-1"])
    assert c.post(f"/v1/carts/{cart_id}/lines", json={"product_id": product_id, "sku": "MUG-1", "quantity": qty},
                  headers=h).status_code == 200
    assert c.put(f"/v1/carts/{cart_id}/buyer", json={"email": email}, headers=h).status_code == 200
    assert c.put(f"/v1/carts/{cart_id}/shipping-address", json={"address": ADDRESS_DE}, headers=h).status_code == 200
    chosen = c.put(f"/v1/carts/{cart_id}/shipping-method", json={"rate_id": "standard"}, headers=h)
    assert chosen.status_code == 200
    return cart_id, chosen.headers["X-Trafi-Position"]


def test_a_cart_reads_back_with_its_lines_and_totals(api):
    cart_id, _ = _ready_cart(api, qty=3)
    # Without min_position the read model may lag; with the write's position it cannot.
    last = api.client.put(f"/v1/carts/{cart_id}/shipping-method", json={"rate_id": "express"}, headers=api.store.storefront)
    response = api.client.get(f"/v1/carts/{cart_id}", params={"min_position": last.headers["X-Trafi-Position"]},
                              headers=api.store.storefront)
    assert response.status_code == 200
    cart = response.json()
    assert [(l["sku"], l["quantity"]) for l in cart["lines"]] == [("MUG-1", 3)]
    assert cart["shipping_method"] == "express" and cart["totals"]["subtotal"] == 4500


def test_the_same_idempotency_key_and_body_replays_the_first_response(api):
    cart_id, _ = _ready_cart(api)
    headers = {**api.store.storefront, "Idempotency-Key": f"checkout-{cart_id}"}
    first = api.client.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=headers)
    again = api.client.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # the same order and the same order token
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers


def test_the_same_idempotency_key_with_another_body_is_422(api):
    headers = {**api.store.storefront, "Idempotency-Key": "one-key"}
    assert api.client.post("/v1/carts", json={"currency": "EUR"}, headers=headers).status_code == 201
    response = api.client.post("/v1/carts", json={"currency": "EUR", "email": "x@example.com"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency.key_reused" and response.json()["field"] == "Idempotency-Key"


def test_creating_carts_without_a_key_creates_two(api):
    h = api.store.storefront
    first = api.client.post("/v1/carts", json={"currency": "EUR"}, headers=h).json()["cart_id"]
    second = api.client.post("/v1/carts", json={"currency": "EUR"}, headers=h).json()["cart_id"]
    assert first != second


def test_checkout_then_the_buyer_sees_the_order_with_the_token_only(api):
    cart_id, _ = _ready_cart(api, qty=2)
    placed = api.client.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=api.store.storefront).json()
    url = f"/v1/orders/{placed['order_id']}"
    ok = api.client.get(url, headers={**api.store.storefront, "X-Order-Token": placed["order_token"]})
    assert ok.status_code == 200 and ok.json()["total"] == placed["total"] and ok.json()["lines"][0]["quantity"] == 2
    wrong = api.client.get(url, headers={**api.store.storefront, "X-Order-Token": "guess"})
    assert wrong.status_code == 404 and wrong.json()["code"] == "order.not_found"


def test_checkout_that_would_oversell_is_409_and_changes_nothing(api):
    cart_id, position = _ready_cart(api, qty=101)  # 100 in stock
    response = api.client.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=api.store.storefront)
    assert response.status_code == 409 and response.json()["code"] == "stock.insufficient"
    assert "X-Trafi-Position" not in response.headers
    cart = api.client.get(f"/v1/carts/{cart_id}", params={"min_position": position}, headers=api.store.storefront).json()
    assert cart["status"] == "open"


def test_another_stores_cart_is_not_found_whatever_the_id(api):
    cart_id, position = _ready_cart(api)
    foreign = api.other.storefront
    assert api.client.get(f"/v1/carts/{cart_id}", params={"min_position": position}, headers=foreign).status_code == 404
    response = api.client.post(f"/v1/carts/{cart_id}/lines", headers=foreign,
                               json={"product_id": str(api.other.shop.products["MUG-1"]), "sku": "MUG-1", "quantity": 1})
    assert response.status_code == 404 and response.json()["code"] == "cart.not_found"
    assert api.client.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=foreign).status_code == 404


def test_a_product_of_another_store_cannot_go_into_a_cart(api):
    cart_id = api.client.post("/v1/carts", json={"currency": "EUR"}, headers=api.store.storefront).json()["cart_id"]
    response = api.client.post(f"/v1/carts/{cart_id}/lines", headers=api.store.storefront,
                               json={"product_id": str(api.other.shop.products["MUG-1"]), "sku": "MUG-1", "quantity": 1})
    assert response.status_code == 422 and response.json()["code"] == "cart.unknown_product"


def test_catalogue_lists_this_stores_products_only(api):
    seeded = {"min_position": api.services.app.recorder.max_notification_id()}
    ours = api.client.get("/v1/products", params=seeded, headers=api.store.storefront).json()["items"]
    theirs = api.client.get("/v1/products", params=seeded, headers=api.other.storefront).json()["items"]
    assert {p["product_id"] for p in ours}.isdisjoint({p["product_id"] for p in theirs})
    assert {p["handle"] for p in ours} == {"mug", "book", "tee"}
    assert api.client.get("/v1/products/mug", headers=api.store.storefront).json()["variants"][0]["sku"] == "MUG-1"
    assert api.client.get("/v1/products/nope", headers=api.store.storefront).status_code == 404


def test_validation_errors_name_the_field_and_the_reason(api):
    cart_id = api.client.post("/v1/carts", json={"currency": "EUR"}, headers=api.store.storefront).json()["cart_id"]
    response = api.client.post(f"/v1/carts/{cart_id}/lines", headers=api.store.storefront,
                               json={"product_id": "not-a-uuid", "sku": "MUG-1", "quantity": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {e["field"] for e in problem["errors"]} == {"body.product_id", "body.quantity"}
    assert problem["field"] in {"body.product_id", "body.quantity"} and problem["reason"]
    assert api.client.get(f"/v1/carts/{uuid4()}", headers=api.store.storefront).status_code == 404


def test_domain_rule_violations_are_422_with_a_stable_code(api):
    response = api.client.post("/v1/carts", json={"currency": "USD"}, headers=api.store.storefront)
    assert response.status_code == 422 and response.json()["code"] == "money.currency_mismatch"
    assert response.json()["field"] == "currency"


def test_nul_characters_are_refused_before_they_reach_an_event(api):
    response = api.client.post("/v1/carts", json={"currency": "EUR", "email": "a\u0000b@example.com"},
                               headers=api.store.storefront)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "email" and "NUL" in response.json()["reason"]
