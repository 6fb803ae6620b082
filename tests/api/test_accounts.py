"""Storefront customer accounts, the wishlist and the admin customer routes, in-process.

Password reset mail goes through a real SMTP server (the `mail_server` fixture).
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse
from uuid import uuid4

from fastapi.testclient import TestClient

from api.app import create_app
from api.services import build_services
from api.settings import Rate
from tests.api.conftest import api_settings, open_api_store
from tests.api.test_storefront import _ready_cart
from tests.factories import ADDRESS_DE

PASSWORD = "correct horse battery"


def _register(api, email: str, store=None, password: str = PASSWORD):
    store = store or api.store
    response = api.client.post("/v1/account/register", json={"email": email, "password": password},
                               headers=store.storefront)
    assert response.status_code == 201, response.text
    return response.json()["customer_id"], response.headers["X-Trafi-Position"]


def _sign_in(api, email: str, store=None, password: str = PASSWORD) -> dict[str, str]:
    """Headers of a signed-in customer: the storefront key and the session."""
    store = store or api.store
    response = api.client.post("/v1/account/sessions", json={"email": email, "password": password},
                               headers=store.storefront)
    assert response.status_code == 201, response.text
    return {**store.storefront, "X-Customer-Session": response.json()["session_token"]}


def _reset_mails(mail_server, to: str, *, expect: int, wait_s: float = 5.0) -> list:
    deadline = time.monotonic() + wait_s
    while True:
        found = [m for m in mail_server.messages if m["To"] == to]
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _token_in(message) -> str:
    body = message.get_payload(decode=True).decode()
    link = re.search(r"https?://\S+/reset-password\?token=\S+", body).group(0)
    return parse_qs(urlparse(link).query)["token"][0]


# --- the account journey -------------------------------------------------------------------------


def test_register_sign_in_addresses_wishlist_checkout_history_and_sign_out(api):
    c, store = api.client, api.store
    customer_id, _ = _register(api, "Ada@Example.com")
    me = _sign_in(api, "ada@example.com")  # e-mails are compared normalised

    account = c.get("/v1/account", headers=me)
    assert account.status_code == 200
    assert account.json() == {"customer_id": customer_id, "email": "ada@example.com", "is_guest": False,
                              "addresses": []}

    # Addresses: one under our own id, one under a fresh id; remove the first.
    home = c.post("/v1/account/addresses", json={"address_id": "home", "address": ADDRESS_DE}, headers=me)
    assert home.status_code == 201 and home.json() == {"address_id": "home"}
    work = c.post("/v1/account/addresses", json={"address": {**ADDRESS_DE, "line1": "Domkloster 4"}}, headers=me)
    assert work.status_code == 201
    work_id = work.json()["address_id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", work_id) and work_id != "home"
    saved = c.get("/v1/account", headers=me).json()["addresses"]
    assert [(a["address_id"], a["line1"], a["city"]) for a in saved] == [
        ("home", "Heidestraße 17", "Köln"), (work_id, "Domkloster 4", "Köln")]
    removed = c.delete("/v1/account/addresses/home", headers=me)
    assert removed.status_code == 200 and removed.json() == {"address_id": "home", "removed": True}
    assert [a["address_id"] for a in c.get("/v1/account", headers=me).json()["addresses"]] == [work_id]
    again = c.delete("/v1/account/addresses/home", headers=me)
    assert again.status_code == 404 and again.json()["code"] == "customer.unknown_address"

    # Wishlist: add (201), add again (200, nothing changes), list, remove, move to a cart.
    mug, book = str(store.shop.products["MUG-1"]), str(store.shop.products["BOOK-1"])
    added = c.post("/v1/account/wishlist", json={"product_id": mug, "sku": "MUG-1"}, headers=me)
    assert added.status_code == 201 and added.json()["added"] is True and added.json()["item_count"] == 1
    twice = c.post("/v1/account/wishlist", json={"product_id": mug, "sku": "MUG-1"}, headers=me)
    assert twice.status_code == 200 and twice.json()["added"] is False and twice.json()["item_count"] == 1
    assert c.post("/v1/account/wishlist", json={"product_id": book, "sku": "BOOK-1"}, headers=me).status_code == 201
    listed = c.get("/v1/account/wishlist", headers=me).json()
    assert listed == {"customer_id": customer_id, "items": [{"product_id": mug, "sku": "MUG-1"},
                                                             {"product_id": book, "sku": "BOOK-1"}]}
    dropped = c.delete("/v1/account/wishlist/BOOK-1", headers=me)
    assert dropped.status_code == 200 and dropped.json()["item_count"] == 1
    gone = c.delete("/v1/account/wishlist/BOOK-1", headers=me)
    assert gone.status_code == 404 and gone.json()["code"] == "wishlist.unknown_item"

    cart_id = c.post("/v1/carts", json={"currency": "EUR"}, headers=store.storefront).json()["cart_id"]
    moved = c.post("/v1/account/wishlist/MUG-1/move-to-cart", json={"cart_id": cart_id, "quantity": 2}, headers=me)
    assert moved.status_code == 200
    assert moved.json() == {"cart_id": cart_id, "sku": "MUG-1", "quantity": 2, "wishlist_item_count": 0}
    assert c.get("/v1/account/wishlist", headers=me).json()["items"] == []
    not_there = c.post("/v1/account/wishlist/MUG-1/move-to-cart", json={"cart_id": cart_id}, headers=me)
    assert not_there.status_code == 404 and not_there.json()["code"] == "wishlist.unknown_item"

    # Check out signed in: no buyer e-mail on the cart, the order is the customer's.
    assert c.put(f"/v1/carts/{cart_id}/shipping-address", json={"address": ADDRESS_DE},
                 headers=store.storefront).status_code == 200
    assert c.put(f"/v1/carts/{cart_id}/shipping-method", json={"rate_id": "standard"},
                 headers=store.storefront).status_code == 200
    placed = c.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=me)
    assert placed.status_code == 201, placed.text
    orders = c.get("/v1/account/orders", params={"min_position": placed.headers["X-Trafi-Position"]}, headers=me)
    assert orders.status_code == 200
    [order] = orders.json()["items"]
    assert order["order_id"] == placed.json()["order_id"] and order["customer_id"] == customer_id
    assert order["email"] == "ada@example.com" and order["item_count"] == 2 and order["total"] == placed.json()["total"]

    # Sign out: the token is refused from the next request on.
    out = c.delete("/v1/account/sessions/current", headers=me)
    assert out.status_code == 200 and out.json()["ended"] is True
    for method, url in [("GET", "/v1/account"), ("GET", "/v1/account/wishlist"), ("GET", "/v1/account/orders"),
                        ("DELETE", "/v1/account/sessions/current")]:
        refused = c.request(method, url, headers=me)
        assert refused.status_code == 401 and refused.json()["code"] == "auth.invalid_token", (method, url)


def test_account_routes_need_a_customer_session(api):
    c = api.client
    for method, url in [("GET", "/v1/account"), ("GET", "/v1/account/orders"), ("GET", "/v1/account/wishlist"),
                        ("DELETE", "/v1/account/addresses/home"), ("DELETE", "/v1/account/sessions/current")]:
        missing = c.request(method, url, headers=api.store.storefront)
        assert missing.status_code == 401 and missing.json()["field"] == "X-Customer-Session", (method, url)
    forged = c.get("/v1/account", headers={**api.store.storefront, "X-Customer-Session": "trafi_cs_" + "0" * 72})
    assert forged.status_code == 401 and forged.json()["code"] == "auth.invalid_token"
    no_key = c.post("/v1/account/register", json={"email": "x@example.com", "password": PASSWORD})
    assert no_key.status_code == 401


def test_registration_errors_and_a_returning_guest_becoming_an_account(api):
    c = api.client
    _register(api, "taken@example.com")
    taken = c.post("/v1/account/register", json={"email": "TAKEN@example.com", "password": PASSWORD},
                   headers=api.store.storefront)
    assert taken.status_code == 409 and taken.json()["code"] == "customer.exists"
    weak = c.post("/v1/account/register", json={"email": "weak@example.com", "password": "short"},
                  headers=api.store.storefront)
    assert weak.status_code == 422 and weak.json()["code"] == "customer.weak_password"
    bad = c.post("/v1/account/register", json={"email": "not-an-email", "password": PASSWORD},
                 headers=api.store.storefront)
    assert bad.status_code == 422 and bad.json()["code"] == "customer.invalid_email"
    extra = c.post("/v1/account/register", json={"email": "x@example.com", "password": PASSWORD, "admin": True},
                   headers=api.store.storefront)
    assert extra.status_code == 422

    # A guest checks out, cannot sign in, then registers: the same customer, with the earlier order.
    cart_id, _ = _ready_cart(api, email="guest@example.com")
    order = c.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=api.store.storefront).json()
    guest = c.post("/v1/account/sessions", json={"email": "guest@example.com", "password": PASSWORD},
                   headers=api.store.storefront)
    assert guest.status_code == 401 and guest.json()["code"] == "auth.invalid_credentials"
    customer_id, position = _register(api, "guest@example.com")
    me = _sign_in(api, "guest@example.com")
    assert c.get("/v1/account", headers=me).json()["customer_id"] == customer_id
    history = c.get("/v1/account/orders", params={"min_position": position}, headers=me).json()
    assert [o["order_id"] for o in history["items"]] == [order["order_id"]]
    bad_cursor = c.get("/v1/account/orders", params={"cursor": "nonsense"}, headers=me)
    assert bad_cursor.status_code == 422 and bad_cursor.json()["code"] == "query.invalid_cursor"


def test_wrong_credentials_are_one_401(api):
    _register(api, "ada@example.com")
    for email, password in [("ada@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)]:
        response = api.client.post("/v1/account/sessions", json={"email": email, "password": password},
                                   headers=api.store.storefront)
        assert response.status_code == 401
        assert response.json()["code"] == "auth.invalid_credentials" and "X-Trafi-Position" not in response.headers


def test_sign_in_with_an_idempotency_key_replays_the_same_session(api):
    _register(api, "ada@example.com")
    headers = {**api.store.storefront, "Idempotency-Key": f"sign-in-{uuid4()}"}
    body = {"email": "ada@example.com", "password": PASSWORD}
    first = api.client.post("/v1/account/sessions", json=body, headers=headers)
    again = api.client.post("/v1/account/sessions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    token = first.json()["session_token"]
    assert token.startswith("trafi_cs_")
    signed_in = {**api.store.storefront, "X-Customer-Session": token}
    assert api.client.get("/v1/account", headers=signed_in).status_code == 200
    other = api.client.post("/v1/account/sessions", json={**body, "password": "another password"}, headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency.key_reused"
    fresh = api.client.post("/v1/account/sessions", json=body, headers=api.store.storefront).json()
    assert fresh["session_token"] != token and fresh["session_id"] != first.json()["session_id"]


def test_failed_sign_ins_are_limited_per_address_and_then_every_attempt_is_refused(api_config):
    settings = api_settings(api_config, anonymous_rate=Rate(0.001, 3))
    services = build_services(settings)
    store = open_api_store(services)
    with TestClient(create_app(services=services), raise_server_exceptions=False) as c:
        def sign_in(password: str):
            return c.post("/v1/account/sessions", json={"email": "ada@example.com", "password": password},
                          headers=store.storefront)

        assert c.post("/v1/account/register", json={"email": "ada@example.com", "password": PASSWORD},
                      headers=store.storefront).status_code == 201
        assert all(sign_in(PASSWORD).status_code == 201 for _ in range(5))  # successes are not counted
        assert [sign_in("wrong password!").status_code for _ in range(3)] == [401, 401, 401]
        limited = sign_in("wrong password!")
        assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
        # Past the limit even the right password is refused: a correct guess must not get through.
        assert sign_in(PASSWORD).status_code == 429


# --- password reset --------------------------------------------------------------------------------


def test_password_reset_by_mail_end_to_end(api, mail_server):
    c, h = api.client, api.store.storefront
    customer_id, _ = _register(api, "ada@example.com")
    requested = c.post("/v1/account/password-reset", json={"email": " Ada@Example.com"}, headers=h)
    assert requested.status_code == 202 and requested.json() == {"status": "accepted"}

    [mail] = _reset_mails(mail_server, "ada@example.com", expect=1)
    assert "reset" in mail["Subject"].lower()
    assert api.services.settings.storefront_url + "/reset-password?token=" in mail.get_payload(decode=True).decode()
    token = _token_in(mail)
    assert token.startswith("trafi_rt_")

    confirmed = c.post("/v1/account/password-reset/confirm", json={"token": token, "new_password": "a new passphrase"},
                       headers=h)
    assert confirmed.status_code == 200 and confirmed.json() == {"customer_id": customer_id}
    assert c.post("/v1/account/sessions", json={"email": "ada@example.com", "password": "a new passphrase"},
                  headers=h).status_code == 201
    old = c.post("/v1/account/sessions", json={"email": "ada@example.com", "password": PASSWORD}, headers=h)
    assert old.status_code == 401
    reused = c.post("/v1/account/password-reset/confirm", json={"token": token, "new_password": "yet another one"},
                    headers=h)
    assert reused.status_code == 422 and reused.json()["code"] == "customer.invalid_reset_token"


def test_a_reset_link_is_voided_by_a_newer_reset_and_bad_tokens_look_alike(api, mail_server):
    c, h = api.client, api.store.storefront
    _register(api, "ada@example.com")
    assert c.post("/v1/account/password-reset", json={"email": "ada@example.com"}, headers=h).status_code == 202
    assert c.post("/v1/account/password-reset", json={"email": "ada@example.com"}, headers=h).status_code == 202
    first, second = (_token_in(m) for m in _reset_mails(mail_server, "ada@example.com", expect=2))
    assert first != second
    short = c.post("/v1/account/password-reset/confirm", json={"token": second, "new_password": "short"}, headers=h)
    assert short.status_code == 422 and short.json()["code"] == "customer.weak_password"
    assert c.post("/v1/account/password-reset/confirm", json={"token": second, "new_password": "a new passphrase"},
                  headers=h).status_code == 200
    session_token = _sign_in(api, "ada@example.com", password="a new passphrase")["X-Customer-Session"]
    for token in [first, "garbage", session_token, "trafi_rt_" + "0" * 72]:
        response = c.post("/v1/account/password-reset/confirm", json={"token": token, "new_password": "whatever it is"},
                          headers=h)
        assert response.status_code == 422 and response.json()["code"] == "customer.invalid_reset_token", token


def test_a_reset_for_an_unknown_email_or_a_guest_is_202_and_sends_nothing(api, mail_server):
    c, h = api.client, api.store.storefront
    cart_id, _ = _ready_cart(api, email="guest@example.com")
    assert c.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=h).status_code == 201
    for email in ["nobody@example.com", "guest@example.com"]:
        response = c.post("/v1/account/password-reset", json={"email": email}, headers=h)
        assert response.status_code == 202 and response.json() == {"status": "accepted"}
    invalid = c.post("/v1/account/password-reset", json={"email": "not-an-email"}, headers=h)
    assert invalid.status_code == 422 and invalid.json()["code"] == "customer.invalid_email"
    time.sleep(0.2)
    assert mail_server.messages == []


def test_a_replayed_reset_request_sends_no_second_mail(api, mail_server):
    _register(api, "ada@example.com")
    headers = {**api.store.storefront, "Idempotency-Key": "reset-once"}
    for _ in range(2):
        response = api.client.post("/v1/account/password-reset", json={"email": "ada@example.com"}, headers=headers)
        assert response.status_code == 202
    assert response.headers["Idempotent-Replayed"] == "true"
    time.sleep(0.2)
    assert len(_reset_mails(mail_server, "ada@example.com", expect=1)) == 1


def test_a_reset_link_works_in_its_own_store_only(api, mail_server):
    _register(api, "ada@example.com")
    _register(api, "ada@example.com", store=api.other)
    assert api.client.post("/v1/account/password-reset", json={"email": "ada@example.com"},
                           headers=api.store.storefront).status_code == 202
    [mail] = _reset_mails(mail_server, "ada@example.com", expect=1)
    elsewhere = api.client.post("/v1/account/password-reset/confirm",
                                json={"token": _token_in(mail), "new_password": "a new passphrase"},
                                headers=api.other.storefront)
    assert elsewhere.status_code == 422 and elsewhere.json()["code"] == "customer.invalid_reset_token"


# --- tenant isolation ------------------------------------------------------------------------------


def test_another_stores_sessions_and_ids_are_refused(api):
    c = api.client
    _register(api, "ada@example.com")
    ours = _sign_in(api, "ada@example.com")
    # Our session with their storefront key: not a session of theirs.
    theirs_with_our_session = {**api.other.storefront, "X-Customer-Session": ours["X-Customer-Session"]}
    assert c.get("/v1/account", headers=theirs_with_our_session).status_code == 401
    assert c.get("/v1/account/wishlist", headers=theirs_with_our_session).status_code == 401
    # Our credentials, their product and cart: unknown here.
    their_mug = str(api.other.shop.products["MUG-1"])
    foreign = c.post("/v1/account/wishlist", json={"product_id": their_mug, "sku": "MUG-1"}, headers=ours)
    assert foreign.status_code == 422 and foreign.json()["code"] == "wishlist.unknown_product"
    their_cart = c.post("/v1/carts", json={"currency": "EUR"}, headers=api.other.storefront).json()["cart_id"]
    mug = str(api.store.shop.products["MUG-1"])
    assert c.post("/v1/account/wishlist", json={"product_id": mug, "sku": "MUG-1"}, headers=ours).status_code == 201
    moved = c.post("/v1/account/wishlist/MUG-1/move-to-cart", json={"cart_id": their_cart}, headers=ours)
    assert moved.status_code == 404 and moved.json()["code"] == "cart.not_found"
    unknown_sku = c.post("/v1/account/wishlist", json={"product_id": mug, "sku": "NOPE"}, headers=ours)
    assert unknown_sku.status_code == 422 and unknown_sku.json()["code"] == "product.unknown_sku"
    # Another customer's cart is not ours to fill.
    _register(api, "bob@example.com")
    bob = _sign_in(api, "bob@example.com")
    bobs_cart, _ = _ready_cart(api, email="bob@example.com")
    taken = c.post("/v1/account/wishlist/MUG-1/move-to-cart", json={"cart_id": bobs_cart}, headers=ours)
    assert taken.status_code == 422 and taken.json()["code"] == "wishlist.foreign_cart"
    assert c.get("/v1/account/wishlist", headers=bob).json()["items"] == []


# --- admin customers -------------------------------------------------------------------------------


def test_admin_lists_and_inspects_customers_of_its_own_store_only(api):
    c = api.client
    customer_id, _ = _register(api, "ada@example.com")
    me = _sign_in(api, "ada@example.com")
    assert c.post("/v1/account/addresses", json={"address_id": "home", "address": ADDRESS_DE},
                  headers=me).status_code == 201
    cart_id, _ = _ready_cart(api, email="guest@example.com")
    placed = c.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=api.store.storefront)
    their_id, _ = _register(api, "theirs@example.com", store=api.other)
    position = placed.headers["X-Trafi-Position"]

    listed = c.get("/v1/admin/customers", params={"min_position": position}, headers=api.store.admin)
    assert listed.status_code == 200
    by_email = {row["email"]: row for row in listed.json()["items"]}
    assert set(by_email) == {"ada@example.com", "guest@example.com"}
    assert by_email["ada@example.com"]["is_guest"] is False and by_email["guest@example.com"]["is_guest"] is True
    assert by_email["guest@example.com"]["orders_count"] == 1

    filtered = c.get("/v1/admin/customers", params={"email": "ADA@example.com", "min_position": position},
                     headers=api.store.admin).json()["items"]
    assert [row["customer_id"] for row in filtered] == [customer_id]
    first_page = c.get("/v1/admin/customers", params={"limit": 1, "min_position": position},
                       headers=api.store.admin).json()
    second_page = c.get("/v1/admin/customers", params={"limit": 1, "cursor": first_page["next_cursor"]},
                        headers=api.store.admin).json()
    assert {first_page["items"][0]["email"], second_page["items"][0]["email"]} == set(by_email)
    assert second_page["next_cursor"] is None

    detail = c.get(f"/v1/admin/customers/{customer_id}", params={"min_position": position}, headers=api.store.admin)
    assert detail.status_code == 200
    assert detail.json()["email"] == "ada@example.com" and detail.json()["address_count"] == 1

    # Their customer is not ours to see or change; ours not theirs.
    assert c.get(f"/v1/admin/customers/{their_id}", headers=api.store.admin).status_code == 404
    assert c.get(f"/v1/admin/customers/{customer_id}", headers=api.other.admin).status_code == 404
    assert c.delete(f"/v1/admin/customers/{customer_id}/addresses/home", headers=api.other.admin).status_code == 404
    their_list = c.get("/v1/admin/customers", headers=api.other.admin).json()["items"]
    assert customer_id not in {row["customer_id"] for row in their_list}

    # Removing a saved address as an admin.
    removed = c.delete(f"/v1/admin/customers/{customer_id}/addresses/home", headers=api.store.admin)
    assert removed.status_code == 200
    assert removed.json() == {"customer_id": customer_id, "address_id": "home", "removed": True}
    assert c.get("/v1/account", headers=me).json()["addresses"] == []
    after = c.get(f"/v1/admin/customers/{customer_id}", params={"min_position": removed.headers["X-Trafi-Position"]},
                  headers=api.store.admin)
    assert after.json()["address_count"] == 0
    missing = c.delete(f"/v1/admin/customers/{customer_id}/addresses/home", headers=api.store.admin)
    assert missing.status_code == 404 and missing.json()["code"] == "customer.unknown_address"


def test_admin_customer_routes_refuse_storefront_keys_and_bad_input(api):
    c = api.client
    assert c.get("/v1/admin/customers", headers=api.store.storefront).status_code == 403
    assert c.get(f"/v1/admin/customers/{uuid4()}", headers=api.store.admin).status_code == 404
    assert c.get("/v1/admin/customers/not-a-uuid", headers=api.store.admin).status_code == 422
    assert c.get("/v1/admin/customers", params={"limit": 0}, headers=api.store.admin).status_code == 422
    bad_cursor = c.get("/v1/admin/customers", params={"cursor": "nonsense"}, headers=api.store.admin)
    assert bad_cursor.status_code == 422 and bad_cursor.json()["code"] == "query.invalid_cursor"
    nul = c.get("/v1/admin/customers", params={"email": "a\x00b@example.com"}, headers=api.store.admin)
    assert nul.status_code == 422
