"""Every admin route × every role, and every route × a foreign store's credentials.

The routes come from the app's own OpenAPI document, so a new route is covered the
moment it exists; the expected answer comes from domain/roles.py, the table the docs
print. Allowed means "not refused" (the request may still be a 404 or a 422 — the ids
here are random); denied means exactly 403 `auth.forbidden`.
"""

from __future__ import annotations

import json
import uuid

import pytest

from commands.admin_users import CreateAdminUser
from commands.customers import AddCustomerAddress, RegisterCustomer
from commands.sessions import SignInAdmin, SignInCustomer
from domain import tokens
from domain.roles import PERMISSIONS, ROLE_PERMISSIONS, Role
from tests.api.requests_from_openapi import operations, send
from tests.factories import ADDRESS_DE

PASSWORD = "role-password-123"

pytestmark = pytest.mark.parametrize("store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)])


def _admin_session(api, store, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    api.bus.execute(CreateAdminUser(email=email, password=PASSWORD, role=role, acting_role="owner"), store.ctx)
    session_id = uuid.uuid4()
    token = api.services.token("as", session_id)
    api.bus.execute(SignInAdmin(email=email, password=PASSWORD, session_id=session_id,
                                token_hash=tokens.token_hash(token)), store.ctx)
    return token


def _customer_session(api, store, email: str) -> tuple[str, dict]:
    customer = api.bus.execute(RegisterCustomer(email=email, password=PASSWORD), store.ctx).data["customer_id"]
    added = api.bus.execute(AddCustomerAddress(customer_id=uuid.UUID(customer), address_id=f"home-{uuid.uuid4().hex[:6]}",
                                                address=ADDRESS_DE),
                            store.ctx).data
    session_id = uuid.uuid4()
    token = api.services.token("cs", session_id)
    api.bus.execute(SignInCustomer(email=email, password=PASSWORD, session_id=session_id,
                                   token_hash=tokens.token_hash(token)), store.ctx)
    return token, {"customer_id": customer, "address_id": added["address_id"], "session_id": str(session_id)}


def _admin_operations(api):
    return [op for op in operations(api.client.get("/openapi.json").json()) if op.permission in PERMISSIONS]


def test_every_admin_route_checks_the_role_of_the_admin_session(api):
    random_ids = {name: str(uuid.uuid4()) for name in
                  ("cart_id", "order_id", "product_id", "key_id", "user_id", "customer_id", "aggregate_id", "session_id")}
    values = {**random_ids, "handle": "no-such-handle", "sku": "NO-SUCH-SKU", "address_id": "nowhere",
              "fulfilment_id": "f1", "return_id": "ret_none"}
    values.update(endpoint_id=str(uuid.uuid4()), delivery_id=str(uuid.uuid4()))  # webhook routes
    values.update(recommendation_id=str(uuid.uuid4()), changeset_id=str(uuid.uuid4()))  # autopilot routes
    admin_ops = _admin_operations(api)
    assert len(admin_ops) >= 30, "the admin surface is missing from the OpenAPI document"
    failures = []
    for role in Role:
        headers = {"Authorization": f"Bearer {_admin_session(api, api.store, role.value)}"}
        for op in admin_ops:
            response = send(api.client, op, values, headers)
            allowed = op.permission in ROLE_PERMISSIONS[role]
            if allowed and response.status_code in (401, 403):
                failures.append(f"{role} {op} ({op.permission}) refused: {response.status_code} {response.text[:120]}")
            if not allowed and (response.status_code != 403 or response.json()["code"] != "auth.forbidden"):
                failures.append(f"{role} {op} ({op.permission}) not refused: {response.status_code}")
            if response.status_code >= 500:
                failures.append(f"{role} {op}: server error {response.status_code}")
    assert not failures, "\n".join(failures)


def test_a_secret_key_is_held_to_its_scopes(api):
    from api.bootstrap import create_api_key

    token = create_api_key(api.bus, api.store.ctx, api.services.settings.secret_key, kind="secret",
                           name="orders only", scopes=("orders:read",))
    headers = {"Authorization": f"Bearer {token}"}
    values = {name: str(uuid.uuid4()) for name in ("cart_id", "order_id", "product_id", "key_id", "user_id",
                                                    "customer_id", "aggregate_id", "session_id")}
    values.update(handle="x", sku="X", address_id="x", fulfilment_id="f1", return_id="ret_x")
    values.update(endpoint_id=str(uuid.uuid4()), delivery_id=str(uuid.uuid4()))  # webhook routes
    values.update(recommendation_id=str(uuid.uuid4()), changeset_id=str(uuid.uuid4()))  # autopilot routes
    for op in _admin_operations(api):
        status = send(api.client, op, values, headers).status_code
        if op.permission == "orders:read":
            assert status not in (401, 403), op
        else:
            assert status == 403, op


def test_no_route_gives_a_foreign_store_anything_of_ours(api):
    """Our real ids in the path, the other store's credentials: 403/404, or their own data — never ours."""
    ours, theirs = api.store, api.other
    # Our resources: a checked-out order, an open cart, a signed-in customer with an address.
    from tests.api.test_storefront import _ready_cart

    cart_id, _ = _ready_cart(api, email="paid@example.com")
    order = api.client.post(f"/v1/carts/{cart_id}/checkout", json={}, headers=ours.storefront).json()
    open_cart, _ = _ready_cart(api, email="open@example.com")
    _, our_customer = _customer_session(api, ours, "secret-customer@example.com")
    their_session, _ = _customer_session(api, theirs, "their-customer@example.com")
    key_id = str(tokens.parse(ours.keys.publishable_key)[1])
    values = {
        "cart_id": open_cart, "order_id": order["order_id"], "aggregate_id": order["order_id"],
        "product_id": str(ours.shop.products["MUG-1"]), "handle": "mug", "sku": "MUG-1", "key_id": key_id,
        "user_id": str(ours.keys.owner_id), **our_customer, "X-Order-Token": order["order_token"],
        "fulfilment_id": "f1", "return_id": "ret_x",
    }
    values.update(endpoint_id=str(uuid.uuid4()), delivery_id=str(uuid.uuid4()))  # webhook routes
    values.update(recommendation_id=str(uuid.uuid4()), changeset_id=str(uuid.uuid4()))  # autopilot routes
    secrets_of_ours = {open_cart, order["order_id"], str(ours.shop.products["MUG-1"]), key_id, str(ours.keys.owner_id),
                       our_customer["customer_id"], str(ours.keys.store_id), "secret-customer@example.com",
                       "paid@example.com", ours.owner_email}
    failures = []
    for op in operations(api.client.get("/openapi.json").json()):
        if not op.path.startswith("/v1/") or op.path == "/v1/noop" or op.method == "delete" and "sessions" in op.path:
            continue
        headers = dict(theirs.admin if op.path.startswith("/v1/admin/") else theirs.storefront)
        headers["X-Customer-Session"] = their_session
        response = send(api.client, op, values, headers)
        sent = op.url(values) + json.dumps(op.body_example)  # echoing the caller's own input is no leak
        leaked = sorted(s for s in secrets_of_ours if s in response.text and s not in sent)
        if leaked:
            failures.append(f"{op} → {response.status_code} leaked {leaked}")
        if "{" in op.path and response.status_code < 300 and any(
            f"{{{name}}}" in op.path for name in ("cart_id", "order_id", "aggregate_id", "product_id", "key_id",
                                                    "user_id", "customer_id", "address_id", "session_id")
        ):
            failures.append(f"{op} → {response.status_code} with another store's id: {json.dumps(response.json())[:150]}")
        if response.status_code >= 500:
            failures.append(f"{op} → server error")
    assert not failures, "\n".join(failures)
