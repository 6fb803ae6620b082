"""Admin access over HTTP: API keys, admin users and roles, admin sessions."""

from __future__ import annotations

import time

from datetime import timedelta
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services import build_services
from api.settings import Rate
from commands.api_keys import RotateApiKey
from domain import tokens
from tests.api.conftest import OWNER_PASSWORD, api_settings, open_api_store

PASSWORD = "team-password-123"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_key(api, headers=None, *, kind="secret", scopes=("keys:manage",), name="test key", **extra) -> dict:
    response = api.client.post("/v1/admin/api-keys", json={"kind": kind, "name": name, "scopes": list(scopes)},
                               headers={**(headers or api.store.admin), **extra})
    assert response.status_code == 201, response.text
    return {**response.json(), "position": response.headers["X-Trafi-Position"]}


def create_user(api, role: str, headers=None, email: str | None = None) -> dict:
    email = email or f"{role}@team.example"
    response = api.client.post("/v1/admin/users", json={"email": email, "password": PASSWORD, "role": role},
                               headers=headers or api.store.admin)
    assert response.status_code == 201, response.text
    return {**response.json(), "email": email, "position": response.headers["X-Trafi-Position"]}


def slug(store) -> str:
    return store.owner_email.split("@", 1)[1].removesuffix(".example")  # the fixture's owner@<slug>.example


def session(api, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = api.client.post("/v1/admin/sessions",
                               json={"store": slug(api.store), "email": email, "password": password})
    assert response.status_code == 201, response.text
    return bearer(response.json()["session_token"])


def owner_session(api) -> dict[str, str]:
    return session(api, api.store.owner_email, OWNER_PASSWORD)


# --- API keys ----------------------------------------------------------------------------------


def test_keys_are_created_listed_and_read_without_their_tokens(api):
    created = create_key(api, name="ERP sync", scopes=("keys:manage", "orders:read"))
    assert created["token"].startswith("trafi_sk_") and created["generation"] == 0 and created["status"] == "active"
    assert created["scopes"] == ["keys:manage", "orders:read"]
    # The new key works (and its use is recorded).
    assert api.client.get("/v1/admin/api-keys", headers=bearer(created["token"])).status_code == 200

    # Use is recorded off the request's path, a moment later.
    deadline = time.monotonic() + 5
    while True:
        listed = api.client.get("/v1/admin/api-keys", headers=api.store.admin,
                                params={"min_position": created["position"]})
        assert listed.status_code == 200
        ours = {item["key_id"]: item for item in listed.json()["items"]}
        if ours[created["key_id"]]["last_used_at"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert set(ours) >= {created["key_id"], str(tokens.parse(api.store.keys.secret_key)[1])}
    assert ours[created["key_id"]]["name"] == "ERP sync" and ours[created["key_id"]]["last_used_at"] is not None
    assert created["token"] not in listed.text and tokens.token_hash(created["token"]) not in listed.text
    assert api.store.keys.secret_key not in listed.text

    one = api.client.get(f"/v1/admin/api-keys/{created['key_id']}", headers=api.store.admin)
    assert one.status_code == 200 and one.json()["kind"] == "secret" and "token" not in one.json()

    storefront = create_key(api, kind="publishable", scopes=(), name="second storefront")
    assert storefront["token"].startswith("trafi_pk_")
    assert api.client.get("/v1/products", headers=bearer(storefront["token"])).status_code == 200


def test_bad_key_requests_are_422(api):
    h = api.store.admin
    cases = [
        ({"kind": "secret", "name": "x", "scopes": ["orders:fly"]}, "access.unknown_scope"),
        ({"kind": "secret", "name": "x", "scopes": []}, "api_key.missing_scopes"),
        ({"kind": "publishable", "name": "x", "scopes": ["orders:read"]}, "api_key.publishable_scopes"),
        ({"kind": "root", "name": "x", "scopes": []}, None),
        ({"kind": "secret", "name": "bad\x00name", "scopes": ["orders:read"]}, None),
        ({"kind": "secret", "name": "x" * 101, "scopes": ["orders:read"]}, None),
    ]
    for body, code in cases:
        response = api.client.post("/v1/admin/api-keys", json=body, headers=h)
        assert response.status_code == 422, (body, response.text)
        if code:
            assert response.json()["code"] == code
    key_id = create_key(api)["key_id"]
    too_long = api.client.post(f"/v1/admin/api-keys/{key_id}/rotate", json={"grace_seconds": 8 * 24 * 3600}, headers=h)
    assert too_long.status_code == 422


def test_rotation_keeps_the_old_token_for_the_grace_period_only(api, monkeypatch):
    old = create_key(api)
    rotated = api.client.post(f"/v1/admin/api-keys/{old['key_id']}/rotate", json={"grace_seconds": 3600},
                              headers=api.store.admin)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["generation"] == 1 and new["token"] != old["token"] and new["previous_valid_until"] is not None
    assert api.client.get("/v1/admin/api-keys", headers=bearer(old["token"])).status_code == 200  # within grace
    assert api.client.get("/v1/admin/api-keys", headers=bearer(new["token"])).status_code == 200

    auth = api.services.auth
    later = auth._now() + timedelta(hours=2)
    monkeypatch.setattr(auth, "_now", lambda: later)
    auth.forget()
    refused = api.client.get("/v1/admin/api-keys", headers=bearer(old["token"]))
    assert refused.status_code == 401 and refused.json()["code"] == "auth.invalid_token"
    assert api.client.get("/v1/admin/api-keys", headers=bearer(new["token"])).status_code == 200


def test_rotation_without_grace_refuses_the_old_token_at_once(api):
    old = create_key(api)
    assert api.client.get("/v1/admin/api-keys", headers=bearer(old["token"])).status_code == 200  # now cached
    new = api.client.post(f"/v1/admin/api-keys/{old['key_id']}/rotate", json={"grace_seconds": 0},
                          headers=api.store.admin).json()
    assert new["previous_valid_until"] is None
    assert api.client.get("/v1/admin/api-keys", headers=bearer(old["token"])).status_code == 401
    assert api.client.get("/v1/admin/api-keys", headers=bearer(new["token"])).status_code == 200
    # A key may rotate itself; the answer is the token to use from now on.
    again = api.client.post(f"/v1/admin/api-keys/{old['key_id']}/rotate", json={"grace_seconds": 0},
                            headers=bearer(new["token"]))
    assert again.status_code == 200 and again.json()["generation"] == 2
    assert api.client.get("/v1/admin/api-keys", headers=bearer(again.json()["token"])).status_code == 200


def test_a_rotation_that_loses_a_race_is_409_stale_generation(api, monkeypatch):
    key_id = UUID(create_key(api)["key_id"])
    app = api.services.app
    load_many = app.load_many
    raced = []

    def load_then_race(ids):
        found = load_many(ids)
        if list(ids) == [key_id] and not raced:  # the route's read; someone else rotates right after it
            raced.append(True)
            token = api.services.token("sk", key_id, 1)
            api.bus.execute(RotateApiKey(key_id=key_id, secret_hash=tokens.token_hash(token), generation=1),
                            api.store.ctx)
        return found

    monkeypatch.setattr(app, "load_many", load_then_race)
    response = api.client.post(f"/v1/admin/api-keys/{key_id}/rotate", json={"grace_seconds": 0},
                               headers=api.store.admin)
    assert raced and response.status_code == 409 and response.json()["code"] == "api_key.stale_generation"


def test_a_revoked_key_is_refused_on_the_very_next_request(api):
    key = create_key(api)
    assert api.client.get("/v1/admin/api-keys", headers=bearer(key["token"])).status_code == 200  # now cached
    revoked = api.client.post(f"/v1/admin/api-keys/{key['key_id']}/revoke", headers=api.store.admin)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    refused = api.client.get("/v1/admin/api-keys", headers=bearer(key["token"]))
    assert refused.status_code == 401 and refused.json()["code"] == "auth.invalid_token"
    # Revoking again is not an error; rotating a revoked key is a conflict.
    assert api.client.post(f"/v1/admin/api-keys/{key['key_id']}/revoke", headers=api.store.admin).status_code == 200
    rotate = api.client.post(f"/v1/admin/api-keys/{key['key_id']}/rotate", json={"grace_seconds": 0},
                             headers=api.store.admin)
    assert rotate.status_code == 409 and rotate.json()["code"] == "api_key.revoked"
    listed = api.client.get(f"/v1/admin/api-keys/{key['key_id']}", headers=api.store.admin,
                            params={"min_position": revoked.headers["X-Trafi-Position"]})
    assert listed.json()["status"] == "revoked" and listed.json()["revoked_at"] is not None


def test_a_credential_cannot_hand_out_more_than_it_has(api):
    narrow = create_key(api, scopes=("keys:manage", "users:manage", "orders:read"), name="narrow")
    h = bearer(narrow["token"])
    wider = api.client.post("/v1/admin/api-keys", json={"kind": "secret", "name": "wider",
                                                        "scopes": ["orders:read", "catalog:write"]}, headers=h)
    assert wider.status_code == 403 and wider.json()["code"] == "auth.scope_escalation"
    assert "catalog:write" in wider.json()["reason"] and wider.json()["field"] == "scopes"
    assert create_key(api, h, scopes=("orders:read",), name="within")["scopes"] == ["orders:read"]
    assert create_key(api, h, kind="publishable", scopes=(), name="storefront 2")["kind"] == "publishable"
    # Rotating a wider key would hand over its new token.
    owner_key_id = tokens.parse(api.store.keys.secret_key)[1]
    rotate = api.client.post(f"/v1/admin/api-keys/{owner_key_id}/rotate", json={"grace_seconds": 0}, headers=h)
    assert rotate.status_code == 403 and rotate.json()["code"] == "auth.scope_escalation"
    # A role is a bundle of permissions: the same rule.
    admin = api.client.post("/v1/admin/users", json={"email": "a@team.example", "password": PASSWORD, "role": "admin"},
                            headers=h)
    assert admin.status_code == 403 and admin.json()["code"] == "auth.scope_escalation"
    assert api.client.get("/v1/admin/api-keys", headers=api.store.admin).status_code == 200  # owner key untouched


def test_an_idempotent_retry_of_key_creation_returns_the_same_token(api):
    headers = {**api.store.admin, "Idempotency-Key": "new-erp-key"}
    body = {"kind": "secret", "name": "ERP", "scopes": ["orders:read"]}
    first = api.client.post("/v1/admin/api-keys", json=body, headers=headers)
    again = api.client.post("/v1/admin/api-keys", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    listed = api.client.get("/v1/admin/api-keys", headers=api.store.admin,
                            params={"min_position": again.headers["X-Trafi-Position"]}).json()["items"]
    assert [k["key_id"] for k in listed if k["name"] == "ERP"] == [first.json()["key_id"]]
    other_body = api.client.post("/v1/admin/api-keys", json={**body, "name": "ERP 2"}, headers=headers)
    assert other_body.status_code == 422 and other_body.json()["code"] == "idempotency.key_reused"


def test_another_stores_keys_and_users_are_404(api):
    their_key = str(tokens.parse(api.other.keys.secret_key)[1])
    their_user = str(api.other.keys.owner_id)
    h = api.store.admin
    answers = [
        api.client.get(f"/v1/admin/api-keys/{their_key}", headers=h),
        api.client.post(f"/v1/admin/api-keys/{their_key}/rotate", json={"grace_seconds": 0}, headers=h),
        api.client.post(f"/v1/admin/api-keys/{their_key}/revoke", headers=h),
        api.client.get(f"/v1/admin/users/{their_user}", headers=h),
        api.client.put(f"/v1/admin/users/{their_user}/role", json={"role": "viewer"}, headers=h),
        api.client.post(f"/v1/admin/users/{their_user}/deactivate", headers=h),
    ]
    assert [a.status_code for a in answers] == [404] * 6, [a.text for a in answers]
    assert answers[0].json()["code"] == "api_key.not_found" and answers[3].json()["code"] == "admin_user.not_found"
    assert api.client.get("/v1/admin/api-keys", headers=api.other.admin).status_code == 200  # still theirs, working
    changes = api.client.get("/v1/admin/role-changes", params={"user_id": their_user}, headers=h)
    assert changes.status_code == 200 and changes.json()["items"] == []


# --- admin users and roles ---------------------------------------------------------------------


def test_users_are_created_change_role_and_are_deactivated(api):
    created = create_user(api, "operator")
    assert created["role"] == "operator" and created["status"] == "active"
    duplicate = api.client.post("/v1/admin/users", json={"email": "OPERATOR@team.example", "password": PASSWORD,
                                                         "role": "viewer"}, headers=api.store.admin)
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "admin_user.exists"
    weak = api.client.post("/v1/admin/users", json={"email": "w@team.example", "password": "short", "role": "viewer"},
                           headers=api.store.admin)
    assert weak.status_code == 422
    unknown_role = api.client.post("/v1/admin/users", json={"email": "u@team.example", "password": PASSWORD,
                                                            "role": "king"}, headers=api.store.admin)
    assert unknown_role.status_code == 422 and unknown_role.json()["code"] == "access.unknown_role"

    listed = api.client.get("/v1/admin/users", params={"min_position": created["position"]}, headers=api.store.admin)
    assert {u["email"]: u["role"] for u in listed.json()["items"]} == {
        api.store.owner_email: "owner", "operator@team.example": "operator"}

    ops = session(api, created["email"])
    me = api.client.get("/v1/admin/me", headers=ops).json()
    assert me["role"] == "operator" and me["user_id"] == created["user_id"] and "orders:write" in me["permissions"]
    assert api.client.get("/v1/admin/users", headers=ops).status_code == 403  # operators do not manage users

    changed = api.client.put(f"/v1/admin/users/{created['user_id']}/role", json={"role": "viewer"},
                             headers=api.store.admin)
    assert changed.status_code == 200 and changed.json()["previous_role"] == "operator"
    assert api.client.get("/v1/admin/me", headers=ops).json()["role"] == "viewer"  # the very next request
    one = api.client.get(f"/v1/admin/users/{created['user_id']}", headers=api.store.admin,
                         params={"min_position": changed.headers["X-Trafi-Position"]})
    assert one.json()["role"] == "viewer"
    same = api.client.put(f"/v1/admin/users/{created['user_id']}/role", json={"role": "viewer"},
                          headers=api.store.admin)
    assert same.status_code == 422 and same.json()["code"] == "admin_user.same_role"

    gone = api.client.post(f"/v1/admin/users/{created['user_id']}/deactivate", headers=api.store.admin)
    assert gone.status_code == 200 and gone.json()["status"] == "deactivated"
    refused = api.client.get("/v1/admin/me", headers=ops)
    assert refused.status_code == 401 and refused.json()["code"] == "auth.invalid_token"
    again = api.client.post("/v1/admin/sessions", json={"store": slug(api.store), "email": created["email"],
                                                        "password": PASSWORD})
    assert again.status_code == 401 and again.json()["code"] == "auth.invalid_credentials"


def test_only_an_owners_session_grants_or_removes_owner(api):
    admin = create_user(api, "admin")
    admin_h = session(api, admin["email"])
    owner_id = str(api.store.keys.owner_id)
    for headers in (admin_h, api.store.admin):  # an admin session, and a key with every scope (acts as admin)
        grant = api.client.post("/v1/admin/users", json={"email": "boss@team.example", "password": PASSWORD,
                                                         "role": "owner"}, headers=headers)
        assert grant.status_code == 403 and grant.json()["code"] == "access.owner_required"
        promote = api.client.put(f"/v1/admin/users/{admin['user_id']}/role", json={"role": "owner"}, headers=headers)
        assert promote.status_code == 403 and promote.json()["code"] == "access.owner_required"
        demote = api.client.put(f"/v1/admin/users/{owner_id}/role", json={"role": "viewer"}, headers=headers)
        assert demote.status_code == 403 and demote.json()["code"] == "access.owner_required"
        remove = api.client.post(f"/v1/admin/users/{owner_id}/deactivate", headers=headers)
        assert remove.status_code == 403 and remove.json()["code"] == "access.owner_required"
    # An admin session may do everything else.
    assert create_user(api, "viewer", headers=admin_h)["role"] == "viewer"

    owner_h = owner_session(api)
    assert create_user(api, "owner", headers=owner_h, email="boss@team.example")["role"] == "owner"
    promoted = api.client.put(f"/v1/admin/users/{admin['user_id']}/role", json={"role": "owner"}, headers=owner_h)
    assert promoted.status_code == 200 and promoted.json()["role"] == "owner"
    assert api.client.get("/v1/admin/me", headers=admin_h).json()["role"] == "owner"
    itself = api.client.put(f"/v1/admin/users/{owner_id}/role", json={"role": "admin"}, headers=owner_h)
    assert itself.status_code == 409 and itself.json()["code"] == "access.last_owner_guard"


def test_role_changes_say_who_changed_what_and_when(api):
    user = create_user(api, "operator")
    owner_h = owner_session(api)
    first = api.client.put(f"/v1/admin/users/{user['user_id']}/role", json={"role": "viewer"}, headers=owner_h)
    second = api.client.put(f"/v1/admin/users/{user['user_id']}/role", json={"role": "risk_manager"},
                            headers=api.store.admin)
    assert first.status_code == second.status_code == 200
    page = api.client.get("/v1/admin/role-changes", headers=api.store.admin, params={
        "user_id": user["user_id"], "min_position": second.headers["X-Trafi-Position"]}).json()
    owner_key_id = tokens.parse(api.store.keys.secret_key)[1]
    assert [(c["before"], c["after"], c["changed_by"]) for c in page["items"]] == [
        ("viewer", "risk_manager", f"apikey:{owner_key_id}"),
        ("operator", "viewer", f"user:{api.store.keys.owner_id}"),
    ]
    assert page["items"][0]["changed_at"] >= page["items"][1]["changed_at"] and page["next_cursor"] is None

    one = api.client.get("/v1/admin/role-changes", params={"limit": 1}, headers=api.store.admin).json()
    rest = api.client.get("/v1/admin/role-changes", params={"limit": 1, "cursor": one["next_cursor"]},
                          headers=api.store.admin).json()
    assert [c["after"] for c in one["items"] + rest["items"]] == ["risk_manager", "viewer"]
    bad = api.client.get("/v1/admin/role-changes", params={"cursor": "nonsense"}, headers=api.store.admin)
    assert bad.status_code == 422 and bad.json()["code"] == "query.invalid_cursor"
    # The audit trail needs audit:read, which operators lack.
    ops = session(api, create_user(api, "operator", email="ops2@team.example")["email"])
    denied = api.client.get("/v1/admin/role-changes", headers=ops)
    assert denied.status_code == 403 and denied.json()["code"] == "auth.forbidden"


# --- admin sessions ----------------------------------------------------------------------------


def test_sign_in_who_am_i_and_sign_out(api):
    signed_in = api.client.post("/v1/admin/sessions", json={"store": slug(api.store), "email": api.store.owner_email,
                                                            "password": OWNER_PASSWORD})
    assert signed_in.status_code == 201, signed_in.text
    body = signed_in.json()
    assert body["session_token"].startswith("trafi_as_") and body["user_id"] == str(api.store.keys.owner_id)
    h = bearer(body["session_token"])
    me = api.client.get("/v1/admin/me", headers=h).json()
    assert me["kind"] == "admin" and me["role"] == "owner" and me["key_id"] is None
    assert me["store_id"] == str(api.store.keys.store_id) and "keys:manage" in me["permissions"]

    ended = api.client.delete("/v1/admin/sessions/current", headers=h)
    assert ended.status_code == 200 and ended.json() == {"session_id": body["session_id"], "ended": True}
    after = api.client.get("/v1/admin/me", headers=h)
    assert after.status_code == 401 and after.json()["code"] == "auth.invalid_token"

    key_me = api.client.get("/v1/admin/me", headers=api.store.admin).json()
    assert key_me["kind"] == "secret" and key_me["role"] is None and key_me["user_id"] is None
    assert key_me["key_id"] == str(tokens.parse(api.store.keys.secret_key)[1])
    not_a_session = api.client.delete("/v1/admin/sessions/current", headers=api.store.admin)
    assert not_a_session.status_code == 403 and not_a_session.json()["code"] == "auth.wrong_key_kind"
    assert api.client.get("/v1/admin/me", headers=api.store.storefront).status_code == 403
    assert api.client.get("/v1/admin/me").status_code == 401


def test_every_failed_sign_in_gets_the_same_answer(api):
    attempts = [
        {"store": slug(api.store), "email": api.store.owner_email, "password": "not the password"},
        {"store": slug(api.store), "email": "nobody@team.example", "password": OWNER_PASSWORD},
        {"store": "no-such-store", "email": api.store.owner_email, "password": OWNER_PASSWORD},
        {"store": slug(api.other), "email": api.store.owner_email, "password": OWNER_PASSWORD},
    ]
    answers = [api.client.post("/v1/admin/sessions", json=body) for body in attempts]
    assert {a.status_code for a in answers} == {401}
    assert len({(a.json()["code"], a.json()["reason"], a.json()["field"]) for a in answers}) == 1
    assert answers[0].json()["code"] == "auth.invalid_credentials"
    malformed = api.client.post("/v1/admin/sessions", json={"store": "Not A Slug!", "email": "a", "password": "b"})
    assert malformed.status_code == 422


def test_an_idempotent_sign_in_retry_returns_the_same_session(api):
    body = {"store": slug(api.store), "email": api.store.owner_email, "password": OWNER_PASSWORD}
    headers = {"Idempotency-Key": "sign-in-1"}
    first = api.client.post("/v1/admin/sessions", json=body, headers=headers)
    again = api.client.post("/v1/admin/sessions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    wrong = api.client.post("/v1/admin/sessions", json={**body, "password": "another password"}, headers=headers)
    assert wrong.status_code == 422 and wrong.json()["code"] == "idempotency.key_reused"


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_sign_in_attempts_are_rate_limited_per_client_address(api_config):
    services = build_services(api_settings(api_config, anonymous_rate=Rate(0.01, 3)))
    store = open_api_store(services)
    with TestClient(create_app(services=services)) as client:
        wrong = {"store": slug(store), "email": store.owner_email, "password": "guess-guess-guess"}
        assert [client.post("/v1/admin/sessions", json=wrong).status_code for _ in range(3)] == [401] * 3
        # Past the limit even the right password is refused: the check comes before the password's.
        right = client.post("/v1/admin/sessions", json={**wrong, "password": OWNER_PASSWORD})
        assert right.status_code == 429 and right.json()["code"] == "rate_limited" and "retry-after" in right.headers
