"""Access control end to end, on SQLite and PostgreSQL: API keys, admin users and sessions through
the command bus, then the access list read model and its queries."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from commands.admin_users import ChangeAdminRole, CreateAdminUser, DeactivateAdminUser
from commands.api_keys import CreateApiKey, RevokeApiKey, RotateApiKey
from commands.checkout import Checkout
from commands.context import StoreContext
from commands.customers import RegisterCustomer
from commands.sessions import SignInAdmin, SignInCustomer, SignOut
from domain import ids, tokens
from domain.admin_user import actor_of
from domain.errors import Conflict, DomainError, InvalidCredentials, NotFound
from projections.read_models.access import AccessList, record_api_key_use
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner
from projections.testing import clean_build, table_rows
from queries.access import AccessQueries, AccessSummary
from tests.factories import ready_cart, seed_small_store

SECRET = b"integration secret"
PASSWORD = "correct horse battery"


def secret_hash(kind: str, token_id: UUID, generation: int = 0) -> str:
    return tokens.token_hash(tokens.derive(SECRET, kind, token_id, generation))


def create_key(bus, ctx, kind="secret", scopes=("orders:read",), name="Sync") -> UUID:
    key_id = uuid4()
    prefix = "sk" if kind == "secret" else "pk"
    bus.execute(CreateApiKey(key_id=key_id, kind=kind, name=name, scopes=scopes,
                             secret_hash=secret_hash(prefix, key_id)), ctx)
    return key_id


def create_admin(bus, ctx, email, role="admin", acting_role="owner") -> UUID:
    result = bus.execute(CreateAdminUser(email=email, password=PASSWORD, role=role, acting_role=acting_role), ctx)
    return UUID(result.data["user_id"])


def no_write(app):
    """Asserts (on exit) that nothing was written to the event log."""
    class Guard:
        def __enter__(self):
            self.before = app.recorder.max_notification_id()

        def __exit__(self, *exc):
            assert app.recorder.max_notification_id() == self.before

    return Guard()


# --- API keys ------------------------------------------------------------------------------------
def test_api_key_lifecycle_never_returns_or_stores_a_token(app, bus, shop):
    ctx = shop.ctx
    key_id = uuid4()
    token = tokens.derive(SECRET, "sk", key_id, 0)
    created = bus.execute(CreateApiKey(
        key_id=key_id, kind="secret", name="ERP", scopes=("orders:read", "stock:write"),
        secret_hash=tokens.token_hash(token),
    ), ctx, idempotency_key="create-erp")
    assert created.data == {
        "key_id": str(key_id), "kind": "secret", "generation": 0, "status": "active", "name": "ERP",
        "scopes": ["orders:read", "stock:write"],
    }
    again = bus.execute(CreateApiKey(
        key_id=key_id, kind="secret", name="ERP", scopes=("orders:read", "stock:write"),
        secret_hash=tokens.token_hash(token),
    ), ctx, idempotency_key="create-erp")
    assert again.replayed and again.data == created.data  # the API derives the same token again from these

    key = app.repository.get(key_id)
    assert key.created_by == "test" and key.accepts(tokens.token_hash(token), datetime.now(timezone.utc))
    stored = b"".join(s.state for s in app.events.recorder.select_events(key_id))
    assert token.encode() not in stored

    rotated = bus.execute(RotateApiKey(
        key_id=key_id, secret_hash=secret_hash("sk", key_id, 1), generation=1, grace_seconds=600,
    ), ctx)
    assert rotated.data["generation"] == 1 and rotated.data["previous_valid_until"]
    now = datetime.now(timezone.utc)
    key = app.repository.get(key_id)
    assert key.accepts(tokens.token_hash(token), now) and key.accepts(secret_hash("sk", key_id, 1), now)
    assert not key.accepts(tokens.token_hash(token), now + timedelta(seconds=601))

    with pytest.raises(Conflict) as stale:  # derived for a generation the key is not moving to
        bus.execute(RotateApiKey(key_id=key_id, secret_hash=secret_hash("sk", key_id, 1), generation=1), ctx)
    assert stale.value.code == "api_key.stale_generation"

    revoked = bus.execute(RevokeApiKey(key_id=key_id), ctx)
    assert revoked.data == {"key_id": str(key_id), "kind": "secret", "generation": 1, "status": "revoked"}
    assert bus.execute(RevokeApiKey(key_id=key_id), ctx).position is None  # a retry writes nothing
    with no_write(app), pytest.raises(Conflict) as error:
        bus.execute(RotateApiKey(key_id=key_id, secret_hash=secret_hash("sk", key_id, 2), generation=2), ctx)
    assert error.value.code == "api_key.revoked"
    assert not app.repository.get(key_id).accepts(secret_hash("sk", key_id, 1), datetime.now(timezone.utc))


def test_api_key_rules_and_collisions(app, bus, shop):
    ctx = shop.ctx
    key_id = create_key(bus, ctx, kind="publishable", scopes=())
    with no_write(app):
        with pytest.raises(Conflict) as exists:
            bus.execute(CreateApiKey(key_id=key_id, kind="publishable", name="x", secret_hash="a" * 64), ctx)
        assert exists.value.code == "api_key.exists"
        for command, code in [
            (CreateApiKey(key_id=uuid4(), kind="publishable", name="x", scopes=("orders:read",), secret_hash="a" * 64),
             "api_key.publishable_scopes"),
            (CreateApiKey(key_id=uuid4(), kind="secret", name="x", secret_hash="a" * 64), "api_key.missing_scopes"),
            (CreateApiKey(key_id=uuid4(), kind="secret", name="x", scopes=("root",), secret_hash="a" * 64),
             "access.unknown_scope"),
            (CreateApiKey(key_id=uuid4(), kind="secret", name="x", scopes=("orders:read",), secret_hash="zz"),
             "api_key.invalid_hash"),
            (RotateApiKey(key_id=key_id, secret_hash="b" * 64, generation=1, grace_seconds=604801),
             "api_key.invalid_grace"),
        ]:
            with pytest.raises(DomainError) as error:
                bus.execute(command, ctx)
            assert error.value.code == code, command


def test_another_stores_key_behaves_as_not_found(app, bus, shop):
    key_id = create_key(bus, shop.ctx)
    other = seed_small_store(bus)
    with no_write(app):
        for command in (
            RotateApiKey(key_id=key_id, secret_hash=secret_hash("sk", key_id, 1), generation=1),
            RevokeApiKey(key_id=key_id),
        ):
            with pytest.raises(NotFound) as error:
                bus.execute(command, other.ctx)
            assert error.value.code == "api_key.not_found"
        with pytest.raises(NotFound) as ghost:  # a store that does not exist cannot own keys
            create_key(bus, StoreContext(store_id=ids.store_id("ghost")))
        assert ghost.value.code == "store.not_found"
    assert app.repository.get(key_id).status == "active"


# --- admin users ---------------------------------------------------------------------------------
def test_admin_users_roles_and_the_owner_rules(app, bus, shop):
    owner_id = create_admin(bus, shop.ctx, "Founder@Example.com", role="owner")  # the bootstrap acts as owner
    assert owner_id == ids.admin_user_id(shop.ctx.store_id, "founder@example.com")
    as_owner = StoreContext(store_id=shop.ctx.store_id, actor=actor_of(owner_id))
    admin_id = create_admin(bus, as_owner, "ops@example.com", role="admin")
    as_admin = StoreContext(store_id=shop.ctx.store_id, actor=actor_of(admin_id))
    viewer_id = create_admin(bus, as_admin, "viewer@example.com", role="viewer", acting_role="admin")

    stored = [s.state for s in app.events.recorder.select_events(owner_id)]
    assert b'"_type_":"personal_data"' in stored[0]
    assert app.repository.get(owner_id).password_hash.startswith("$argon2id$")

    with no_write(app):
        for command, context, code in [
            (CreateAdminUser(email="OPS@example.com", password=PASSWORD, role="viewer", acting_role="owner"),
             as_owner, "admin_user.exists"),
            (CreateAdminUser(email="new@example.com", password=PASSWORD, role="owner", acting_role="admin"),
             as_admin, "access.owner_required"),
            (CreateAdminUser(email="new@example.com", password="short", role="viewer", acting_role="admin"),
             as_admin, "customer.weak_password"),
            (CreateAdminUser(email="nope", password=PASSWORD, role="viewer", acting_role="admin"),
             as_admin, "admin_user.invalid_email"),
            (ChangeAdminRole(user_id=viewer_id, role="owner", acting_role="admin"), as_admin, "access.owner_required"),
            (ChangeAdminRole(user_id=owner_id, role="admin", acting_role="admin"), as_admin, "access.owner_required"),
            (ChangeAdminRole(user_id=owner_id, role="admin", acting_role="owner"), as_owner, "access.last_owner_guard"),
            (DeactivateAdminUser(user_id=owner_id, acting_role="owner"), as_owner, "access.last_owner_guard"),
            (ChangeAdminRole(user_id=viewer_id, role="viewer", acting_role="admin"), as_admin, "admin_user.same_role"),
            (ChangeAdminRole(user_id=viewer_id, role="god", acting_role="admin"), as_admin, "access.unknown_role"),
        ]:
            with pytest.raises(DomainError) as error:
                bus.execute(command, context)
            assert error.value.code == code, command

    changed = bus.execute(ChangeAdminRole(user_id=viewer_id, role="operator", acting_role="admin"), as_admin)
    assert changed.data == {
        "user_id": str(viewer_id), "role": "operator", "status": "active", "previous_role": "viewer",
    }
    bus.execute(ChangeAdminRole(user_id=admin_id, role="owner", acting_role="owner"), as_owner)
    bus.execute(ChangeAdminRole(user_id=owner_id, role="admin", acting_role="owner"), as_admin)  # ops is owner now
    deactivated = bus.execute(DeactivateAdminUser(user_id=viewer_id, acting_role="owner"), as_admin)
    assert deactivated.data["status"] == "deactivated"
    with pytest.raises(Conflict) as gone:
        bus.execute(ChangeAdminRole(user_id=viewer_id, role="viewer", acting_role="owner"), as_admin)
    assert gone.value.code == "admin_user.deactivated"


def test_another_stores_admin_user_behaves_as_not_found(app, bus, shop):
    user_id = create_admin(bus, shop.ctx, "ops@example.com")
    other = seed_small_store(bus)
    with no_write(app):
        for command in (
            ChangeAdminRole(user_id=user_id, role="viewer", acting_role="owner"),
            DeactivateAdminUser(user_id=user_id, acting_role="owner"),
        ):
            with pytest.raises(NotFound) as error:
                bus.execute(command, other.ctx)
            assert error.value.code == "admin_user.not_found"
    # The same e-mail is a different person in another store.
    assert create_admin(bus, other.ctx, "ops@example.com") != user_id


# --- sessions ------------------------------------------------------------------------------------
def sign_in(bus, ctx, command_class, email, password, **extra):
    session_id = uuid4()
    kind = "cs" if command_class is SignInCustomer else "as"
    return bus.execute(command_class(
        email=email, password=password, session_id=session_id, token_hash=secret_hash(kind, session_id), **extra,
    ), ctx)


def test_customer_sign_in_and_out(app, bus, shop):
    ctx = shop.ctx
    registered = bus.execute(RegisterCustomer(email="ann@example.com", password=PASSWORD), ctx)
    customer_id = UUID(registered.data["customer_id"])
    result = sign_in(bus, ctx, SignInCustomer, "Ann@Example.com ", PASSWORD)
    session_id = UUID(result.data["session_id"])
    assert result.data["subject_id"] == str(customer_id)
    expires_at = datetime.fromisoformat(result.data["expires_at"])
    assert timedelta(days=29, hours=23) < expires_at - datetime.now(timezone.utc) <= timedelta(days=30)
    session = app.repository.get(session_id)
    assert (session.subject_kind, session.subject_id) == ("customer", customer_id)
    assert session.accepts(secret_hash("cs", session_id), datetime.now(timezone.utc))

    # A guest (an earlier checkout, no password), an unknown e-mail, a wrong password, another
    # store: all the same answer, and nothing written.
    bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1}, email="guest@example.com")), ctx)
    other = seed_small_store(bus)
    with no_write(app):
        for context, email, password in [
            (ctx, "guest@example.com", PASSWORD), (ctx, "nobody@example.com", PASSWORD),
            (ctx, "ann@example.com", "wrong password!"), (other.ctx, "ann@example.com", PASSWORD),
            (ctx, "guest@example.com", ""),
        ]:
            with pytest.raises(InvalidCredentials) as error:
                sign_in(bus, context, SignInCustomer, email, password)
            assert (error.value.code, error.value.field) == ("auth.invalid_credentials", None)

    assert bus.execute(SignOut(session_id=session_id), ctx).data == {"session_id": str(session_id), "ended": True}
    again = bus.execute(SignOut(session_id=session_id), ctx)
    assert again.data["ended"] and again.position is None
    assert not app.repository.get(session_id).accepts(secret_hash("cs", session_id), datetime.now(timezone.utc))


def test_admin_sign_in_refuses_deactivated_users(app, bus, shop):
    ctx = shop.ctx
    user_id = create_admin(bus, ctx, "ops@example.com", role="operator")
    result = sign_in(bus, ctx, SignInAdmin, "ops@example.com", PASSWORD, ttl_seconds=3600)
    assert result.data["subject_id"] == str(user_id)
    session = app.repository.get(UUID(result.data["session_id"]))
    assert session.subject_kind == "admin"
    assert datetime.fromisoformat(session.expires_at) - datetime.now(timezone.utc) <= timedelta(hours=1)
    default = sign_in(bus, ctx, SignInAdmin, "ops@example.com", PASSWORD)
    assert datetime.fromisoformat(default.data["expires_at"]) - datetime.now(timezone.utc) <= timedelta(hours=12)

    with pytest.raises(InvalidCredentials):
        sign_in(bus, ctx, SignInAdmin, "ops@example.com", "wrong password!")
    # A customer account is not an admin account, and vice versa.
    bus.execute(RegisterCustomer(email="ann@example.com", password=PASSWORD), ctx)
    with pytest.raises(InvalidCredentials):
        sign_in(bus, ctx, SignInAdmin, "ann@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials):
        sign_in(bus, ctx, SignInCustomer, "ops@example.com", PASSWORD)

    bus.execute(DeactivateAdminUser(user_id=user_id, acting_role="owner"), ctx)
    with no_write(app), pytest.raises(InvalidCredentials):
        sign_in(bus, ctx, SignInAdmin, "ops@example.com", PASSWORD)
    with pytest.raises(DomainError) as ttl:
        sign_in(bus, ctx, SignInCustomer, "ann@example.com", PASSWORD, ttl_seconds=10)
    assert ttl.value.code == "session.invalid_ttl"


def test_another_stores_session_behaves_as_not_found(app, bus, shop):
    bus.execute(RegisterCustomer(email="ann@example.com", password=PASSWORD), shop.ctx)
    session_id = UUID(sign_in(bus, shop.ctx, SignInCustomer, "ann@example.com", PASSWORD).data["session_id"])
    other = seed_small_store(bus)
    with no_write(app), pytest.raises(NotFound) as error:
        bus.execute(SignOut(session_id=session_id), other.ctx)
    assert error.value.code == "session.not_found"
    assert not app.repository.get(session_id).ended


# --- the access list read model and its queries --------------------------------------------------
def populate(bus, shop) -> dict:
    ctx = shop.ctx
    owner = create_admin(bus, ctx, "founder@example.com", role="owner")
    as_owner = StoreContext(store_id=ctx.store_id, actor=actor_of(owner))
    ops = create_admin(bus, as_owner, "Ops@Example.com", role="viewer")
    left = create_admin(bus, as_owner, "left@example.com", role="operator")
    bus.execute(ChangeAdminRole(user_id=ops, role="admin", acting_role="owner"), as_owner)
    bus.execute(ChangeAdminRole(user_id=ops, role="owner", acting_role="owner"), as_owner)
    bus.execute(DeactivateAdminUser(user_id=left, acting_role="owner"), as_owner)
    storefront = create_key(bus, as_owner, kind="publishable", scopes=(), name="Storefront")
    erp = create_key(bus, as_owner, scopes=("stock:write", "orders:read"), name="ERP")
    bus.execute(RotateApiKey(key_id=erp, secret_hash=secret_hash("sk", erp, 1), generation=1), as_owner)
    old = create_key(bus, as_owner, name="Old")
    bus.execute(RevokeApiKey(key_id=old), as_owner)
    return {"owner": owner, "ops": ops, "left": left, "storefront": storefront, "erp": erp, "old": old}


def test_access_list_read_model_and_queries(app, bus, shop, views):
    made = populate(bus, shop)
    other = seed_small_store(bus)
    foreign_user = create_admin(bus, other.ctx, "founder@example.com", role="owner")
    foreign_key = create_key(bus, other.ctx)
    runner = ProjectionRunner(app, views, AccessList(), batch_size=4)
    position = app.recorder.max_notification_id()
    runner.catch_up()
    queries = AccessQueries(views)
    ctx = shop.ctx

    used_at = datetime(2026, 3, 11, 9, 30, tzinfo=timezone.utc)
    record_api_key_use(views, ctx.store_id, made["erp"], used_at)
    record_api_key_use(views, ctx.store_id, made["erp"], used_at - timedelta(hours=1))  # older: ignored
    # A usage row naming another store never leaks into this store's list.
    record_api_key_use(views, other.ctx.store_id, foreign_key, used_at)

    keys = queries.list_api_keys(ctx, min_position=position)
    assert [(k.name, k.kind, k.scopes, k.generation, k.status) for k in keys] == [
        ("Storefront", "publishable", (), 0, "active"),
        ("ERP", "secret", ("orders:read", "stock:write"), 1, "active"),
        ("Old", "secret", ("orders:read",), 0, "revoked"),
    ]
    erp = queries.get_api_key(ctx, made["erp"])
    assert erp.last_used_at == used_at and erp.rotated_at is not None and erp.revoked_at is None
    assert keys[2].revoked_at is not None and keys[0].last_used_at is None
    assert erp.created_by == f"user:{made['owner']}"

    users = queries.list_admin_users(ctx)
    assert [(u.email, u.role, u.status) for u in users] == [
        ("founder@example.com", "owner", "active"), ("left@example.com", "operator", "deactivated"),
        ("ops@example.com", "owner", "active"),
    ]
    assert queries.get_admin_user(ctx, made["ops"]).updated_at > users[2].created_at

    changes = queries.role_changes(ctx)
    assert [(c.user_id, c.before, c.after) for c in changes.items] == [
        (made["ops"], "admin", "owner"), (made["ops"], "viewer", "admin"),
    ]
    assert changes.items[0].changed_by == f"user:{made['owner']}"
    first = queries.role_changes(ctx, limit=1)
    second = queries.role_changes(ctx, limit=1, cursor=first.next_cursor)
    assert first.items + second.items == changes.items and second.next_cursor is None
    assert queries.role_changes(ctx, made["left"]).items == ()
    assert queries.role_changes(ctx, foreign_user).items == ()

    assert queries.store_access(ctx) == AccessSummary(active_owners=2, active_users=2, active_keys=2)
    assert queries.store_access(other.ctx) == AccessSummary(active_owners=1, active_users=1, active_keys=1)

    # Tenant isolation: another store's rows are never returned.
    assert [u.user_id for u in queries.list_admin_users(other.ctx)] == [foreign_user]
    assert [k.key_id for k in queries.list_api_keys(other.ctx)] == [foreign_key]
    with pytest.raises(NotFound) as key_error:
        queries.get_api_key(other.ctx, made["erp"])
    assert key_error.value.code == "api_key.not_found"
    with pytest.raises(NotFound) as user_error:
        queries.get_admin_user(other.ctx, made["ops"])
    assert user_error.value.code == "admin_user.not_found"

    # No password hash or token hash is projected.
    rows = table_rows(views, AccessList())
    assert "$argon2id$" not in json.dumps(rows, default=str)
    assert app.repository.get(made["erp"]).secret_hash not in json.dumps(rows, default=str)


def test_access_list_rebuilds_equal_and_keeps_usage(app, bus, shop, views, tmp_path):
    live = ProjectionRunner(app, views, AccessList(), batch_size=3)
    made = populate(bus, shop)
    live.catch_up()
    bus.execute(RevokeApiKey(key_id=made["storefront"]), shop.ctx)
    live.catch_up()
    record_api_key_use(views, shop.ctx.store_id, made["erp"], datetime.now(timezone.utc))
    live_rows = table_rows(views, AccessList())
    assert all(live_rows.values())
    assert clean_build(app, AccessList(), tmp_path) == live_rows
    rebuild(app, views, AccessList())
    assert table_rows(views, AccessList()) == live_rows
    # Usage is not in the event log, so a rebuild must leave it alone.
    assert AccessQueries(views).get_api_key(shop.ctx, made["erp"]).last_used_at is not None
