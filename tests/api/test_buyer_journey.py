"""End to end over real HTTP: uvicorn on a free port, httpx as the buyer and the merchant."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import ADDRESS_DE


@pytest.mark.slow
def test_browse_cart_checkout_and_the_order_shows_in_the_admin_list(live_server):
    base, store = live_server
    buyer = httpx.Client(base_url=base, headers=store.storefront, timeout=10)
    merchant = httpx.Client(base_url=base, headers=store.admin, timeout=10)

    products = buyer.get("/v1/products", params={"in_stock": True}).json()["items"]
    mug = next(p for p in products if p["handle"] == "mug")
    assert mug["in_stock"] and mug["variants"][0]["available"] == 100

    cart = buyer.post("/v1/carts", json={"currency": "EUR"}, headers={"Idempotency-Key": "cart-1"})
    assert cart.status_code == 201, cart.text
    cart_id = cart.json()["cart_id"]
    line = buyer.post(f"/v1/carts/{cart_id}/lines", json={"product_id": mug["product_id"], "sku": "MUG-1", "quantity": 2})
    assert line.status_code == 200 and line.json()["quantity"] == 2
    assert buyer.put(f"/v1/carts/{cart_id}/buyer", json={"email": "ada@example.com"}).status_code == 200
    assert buyer.put(f"/v1/carts/{cart_id}/shipping-address", json={"address": ADDRESS_DE}).status_code == 200
    chosen = buyer.put(f"/v1/carts/{cart_id}/shipping-method", json={"rate_id": "standard"})
    assert chosen.status_code == 200

    priced = buyer.get(f"/v1/carts/{cart_id}", params={"min_position": chosen.headers["X-Trafi-Position"]}).json()
    assert priced["totals"]["subtotal"] == 3000 and priced["shipping_estimate"]["rate_id"] == "standard"

    placed = buyer.post(f"/v1/carts/{cart_id}/checkout", json={"expected_total": priced["totals"]["total"]},
                        headers={"Idempotency-Key": "checkout-1"})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["total"] == priced["totals"]["total"]

    status = buyer.get(f"/v1/orders/{order['order_id']}", headers={"X-Order-Token": order["order_token"]})
    assert status.status_code == 200 and status.json()["status"] == "pending_payment"

    listed = merchant.get("/v1/admin/orders", params={"min_position": placed.headers["X-Trafi-Position"]})
    assert listed.status_code == 200, listed.text
    [summary] = [o for o in listed.json()["items"] if o["order_id"] == order["order_id"]]
    assert summary["total"] == order["total"] and summary["status"] == "pending_payment"
    assert summary["email"] == "ada@example.com"
