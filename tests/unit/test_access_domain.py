"""Access-control aggregates: API keys, admin users and sessions — their rules, and that replay
rebuilds the live state through the real serialiser."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.application import TrafiApplication
from commands.config import EventStoreConfig
from domain import ids, tokens
from domain.admin_user import AdminUser, AdminUserDeactivated, LastOwnerGuard, OwnerRequired, actor_of
from domain.api_key import MAX_GRACE_SECONDS, ApiKey, ApiKeyRevoked
from domain.errors import Conflict, DomainError, InvalidValue
from domain.personal import PersonalData
from domain.roles import Role
from domain.session import Session

STORE_ID = UUID(int=1)
SECRET = b"test secret key"
T0 = datetime(2026, 3, 11, 12, 0, tzinfo=timezone.utc)
_mapper = TrafiApplication(EventStoreConfig(kind="sqlite", sqlite_path=":memory:")).mapper


def replayed(events):
    stored = [_mapper.to_stored_event(e) for e in events]
    return project_aggregate(None, [_mapper.to_domain_event(s) for s in stored])


def state(aggregate) -> dict:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def key_hash(key_id: UUID, generation: int, kind: str = "sk") -> str:
    return tokens.token_hash(tokens.derive(SECRET, kind, key_id, generation))


def new_key(kind: str = "secret", scopes=("orders:read",)) -> ApiKey:
    key_id = uuid4()
    return ApiKey.create(
        key_id, store_id=STORE_ID, kind=kind, name=" Warehouse sync ", scopes=scopes,
        secret_hash=key_hash(key_id, 0, "sk" if kind == "secret" else "pk"), created_by="user:test",
    )


def test_access_aggregates_are_registered_for_topic_checks():
    """tests/unit/test_topics.py checks every aggregate in domain.AGGREGATES; these must be among them."""
    from domain import AGGREGATES

    assert {ApiKey, AdminUser, Session} <= set(AGGREGATES)


# --- API keys -----------------------------------------------------------------------------------
def test_a_new_key_holds_only_the_hash_of_its_token():
    key = new_key(scopes=["orders:read", "catalog:read", "orders:read"])
    assert (key.kind, key.name, key.generation, key.status) == ("secret", "Warehouse sync", 0, "active")
    assert key.scopes == ("catalog:read", "orders:read")  # sorted, de-duplicated
    token = tokens.derive(SECRET, key.token_kind, key.id, 0)
    assert key.accepts(tokens.token_hash(token), T0)
    assert token not in repr(key.collect_events()[0].__dict__)
    assert key.created_by == "user:test"


@pytest.mark.parametrize("kind, scopes, field, code", [
    ("admin", (), "kind", "api_key.invalid_kind"),
    ("publishable", ("orders:read",), "scopes", "api_key.publishable_scopes"),
    ("secret", (), "scopes", "api_key.missing_scopes"),
    ("secret", ("orders:read", "orders:delete"), "scopes", "access.unknown_scope"),
])
def test_key_kind_and_scopes_are_checked(kind, scopes, field, code):
    with pytest.raises(InvalidValue) as error:
        new_key(kind, scopes)
    assert (error.value.field, error.value.code) == (field, code)


@pytest.mark.parametrize("name, secret_hash, field, code", [
    ("   ", "a" * 64, "name", "api_key.invalid_name"),
    ("x" * 101, "a" * 64, "name", "api_key.invalid_name"),
    ("ok", "not a hash", "secret_hash", "api_key.invalid_hash"),
    ("ok", "A" * 64, "secret_hash", "api_key.invalid_hash"),
])
def test_key_name_and_hash_are_checked(name, secret_hash, field, code):
    with pytest.raises(InvalidValue) as error:
        ApiKey.create(uuid4(), store_id=STORE_ID, kind="publishable", name=name, scopes=(), secret_hash=secret_hash,
                      created_by="system")
    assert (error.value.field, error.value.code) == (field, code)


def test_rotation_keeps_the_previous_token_for_its_grace_period_only():
    key = new_key()
    old, new = key_hash(key.id, 0), key_hash(key.id, 1)
    key.rotate(new, 3600, T0, for_generation=1)
    assert key.generation == 1
    assert key.previous_valid_until == (T0 + timedelta(hours=1)).isoformat()
    assert key.accepts(new, T0) and key.accepts(old, T0 + timedelta(minutes=59))
    assert not key.accepts(old, T0 + timedelta(hours=1))
    assert key.accepts(new, T0 + timedelta(days=365))

    # Rotating again ends the first token's grace at once: at most two tokens open a key.
    newest = key_hash(key.id, 2)
    key.rotate(newest, 3600, T0, for_generation=2)
    assert not key.accepts(old, T0) and key.accepts(new, T0) and key.accepts(newest, T0)


def test_rotation_without_grace_ends_the_old_token_immediately():
    key = new_key()
    old = key.secret_hash
    key.rotate(key_hash(key.id, 1), 0, T0)
    assert key.previous_valid_until is None
    assert not key.accepts(old, T0 - timedelta(days=1))


@pytest.mark.parametrize("grace", [-1, MAX_GRACE_SECONDS + 1, 1.5, True])
def test_grace_is_zero_to_seven_days(grace):
    key = new_key()
    with pytest.raises(InvalidValue) as error:
        key.rotate(key_hash(key.id, 1), grace, T0)
    assert error.value.code == "api_key.invalid_grace"
    key.rotate(key_hash(key.id, 1), MAX_GRACE_SECONDS, T0)


def test_rotation_refuses_a_secret_for_another_generation_or_the_same_secret():
    key = new_key()
    with pytest.raises(Conflict) as stale:
        key.rotate(key_hash(key.id, 1), 0, T0, for_generation=2)
    assert stale.value.code == "api_key.stale_generation"
    with pytest.raises(InvalidValue) as same:
        key.rotate(key.secret_hash, 0, T0)
    assert same.value.code == "api_key.same_secret"
    with pytest.raises(InvalidValue) as naive:
        key.rotate(key_hash(key.id, 1), 0, T0.replace(tzinfo=None))
    assert naive.value.field == "at"
    assert key.generation == 0 and len(key.collect_events()) == 1


def test_a_revoked_key_opens_nothing_and_cannot_be_rotated():
    key = new_key()
    current = key.secret_hash
    key.rotate(key_hash(key.id, 1), 3600, T0)
    key.revoke("user:admin")
    assert key.status == "revoked" and key.revoked_by == "user:admin"
    assert not key.accepts(current, T0) and not key.accepts(key.secret_hash, T0)
    with pytest.raises(ApiKeyRevoked) as error:
        key.rotate(key_hash(key.id, 2), 0, T0)
    assert error.value.code == "api_key.revoked" and isinstance(error.value, Conflict)
    key.revoke("user:other")  # already revoked: nothing happens
    assert [type(e).__name__ for e in key.collect_events()] == ["Created", "Rotated", "Revoked"]


def test_accepts_tolerates_any_input():
    key = new_key()
    assert not key.accepts("ünïcödé", T0) and not key.accepts("", T0)


key_ops = st.lists(
    st.one_of(
        st.tuples(st.just("rotate"), st.integers(-10, MAX_GRACE_SECONDS + 10)),
        st.tuples(st.just("wait"), st.integers(0, 3 * 24 * 3600)),
        st.tuples(st.just("revoke")),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(key_ops, st.integers(0, 10 * 24 * 3600))
def test_key_acceptance_for_any_history(ops, probe_after):
    """Only the current token, or the previous one within its grace, is ever accepted;
    after a revocation, none is. Replay rebuilds the same key."""
    key = new_key()
    now = T0
    every_hash = [key.secret_hash]
    grace_until = None  # when the previous token stops working
    for op in ops:
        try:
            if op[0] == "rotate":
                new = key_hash(key.id, key.generation + 1)
                key.rotate(new, op[1], now, for_generation=key.generation + 1)
                every_hash.append(new)
                grace_until = now + timedelta(seconds=op[1]) if op[1] else None
            elif op[0] == "wait":
                now += timedelta(seconds=op[1])
            else:
                key.revoke("user:x")
        except DomainError:
            pass
    probe = now + timedelta(seconds=probe_after)
    accepted = [h for h in every_hash + [key_hash(key.id, 999)] if key.accepts(h, probe)]
    if key.revoked:
        assert accepted == []
    else:
        expected = [every_hash[-1]]
        if len(every_hash) > 1 and grace_until is not None and probe < grace_until:
            expected.insert(0, every_hash[-2])
        assert accepted == expected
    assert key.generation == len(every_hash) - 1
    assert state(replayed(key.collect_events())) == state(key)


# --- admin users --------------------------------------------------------------------------------
def new_user(role: str = "admin", email: str = "Ops@Example.com") -> AdminUser:
    return AdminUser.invite(
        ids.admin_user_id(STORE_ID, email), store_id=STORE_ID, email=email, password_hash="$argon2id$x",
        role=role, invited_by="user:founder", by_role="owner",
    )


def test_an_invitation_keeps_the_email_as_personal_data():
    user = new_user()
    assert isinstance(user.email, PersonalData) and user.email == PersonalData(user.id, "ops@example.com")
    assert (user.role, user.status, user.can_sign_in, user.invited_by) == ("admin", "active", True, "user:founder")
    assert user.id == ids.admin_user_id(STORE_ID, " OPS@example.com ")
    assert state(replayed(user.collect_events())) == state(user)


def test_invitation_checks_role_email_and_who_may_make_owners():
    with pytest.raises(InvalidValue) as role:
        new_user(role="superuser")
    assert role.value.code == "access.unknown_role"
    with pytest.raises(InvalidValue) as email:
        new_user(email="nope")
    assert (email.value.field, email.value.code) == ("email", "admin_user.invalid_email")
    with pytest.raises(OwnerRequired) as owner:
        AdminUser.invite(uuid4(), store_id=STORE_ID, email="a@example.com", password_hash="h", role="owner",
                         invited_by="user:x", by_role="admin")
    assert owner.value.code == "access.owner_required"


def test_only_an_owner_grants_or_removes_the_owner_role():
    user = new_user("operator")
    for by_role in ("admin", "operator", "viewer"):
        with pytest.raises(OwnerRequired):
            user.change_role("owner", by_actor="user:someone", by_role=by_role)
    user.change_role("viewer", by_actor="user:admin", by_role="admin")  # admins manage non-owners
    user.change_role("owner", by_actor="user:founder", by_role="owner")
    with pytest.raises(OwnerRequired):
        user.change_role("admin", by_actor="user:admin", by_role="admin")
    with pytest.raises(OwnerRequired):
        user.deactivate(by_actor="user:admin", by_role="admin")
    events = user.collect_events()
    assert [(e.before, e.after, e.changed_by) for e in events[1:]] == [
        ("operator", "viewer", "user:admin"), ("viewer", "owner", "user:founder"),
    ]
    assert state(replayed(events)) == state(user)


def test_an_owner_cannot_demote_or_deactivate_themselves():
    owner = new_user("owner")
    me = actor_of(owner.id)
    with pytest.raises(LastOwnerGuard) as demote:
        owner.change_role("admin", by_actor=me, by_role="owner")
    assert demote.value.code == "access.last_owner_guard"
    with pytest.raises(LastOwnerGuard):
        owner.deactivate(by_actor=me, by_role="owner")
    owner.change_role("admin", by_actor="user:co-founder", by_role="owner")  # another owner may
    assert owner.role == Role.ADMIN
    owner.deactivate(by_actor=actor_of(owner.id), by_role="admin")  # a non-owner may leave
    assert owner.status == "deactivated"


def test_a_no_op_role_change_is_refused():
    user = new_user("viewer")
    with pytest.raises(InvalidValue) as error:
        user.change_role("viewer", by_actor="user:x", by_role="owner")
    assert error.value.code == "admin_user.same_role"
    with pytest.raises(InvalidValue) as acting:
        user.change_role("admin", by_actor="user:x", by_role="root")
    assert acting.value.field == "acting_role"


def test_a_deactivated_user_cannot_sign_in_or_be_changed():
    user = new_user()
    user.deactivate(by_actor="user:founder", by_role="owner")
    assert not user.can_sign_in
    with pytest.raises(AdminUserDeactivated) as error:
        user.change_role("viewer", by_actor="user:founder", by_role="owner")
    assert error.value.code == "admin_user.deactivated"
    with pytest.raises(AdminUserDeactivated):
        user.set_password("$argon2id$y")
    user.deactivate(by_actor="user:founder", by_role="owner")  # again: nothing happens
    events = user.collect_events()
    assert [type(e).__name__ for e in events] == ["Created", "Deactivated"]
    assert state(replayed(events)) == state(user)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["change", "deactivate"]), st.sampled_from(list(Role)), st.sampled_from(list(Role)),
    st.booleans(),
), max_size=20), st.sampled_from(list(Role)))
def test_owner_role_only_moves_through_another_owner(ops, first_role):
    user = new_user(first_role.value)
    def active_owner() -> bool:
        return user.role == Role.OWNER and user.active

    for op, role, acting, is_self in ops:
        actor = actor_of(user.id) if is_self else "user:other"
        was, was_owner = (user.role, user.active), active_owner()
        try:
            if op == "change":
                user.change_role(role.value, by_actor=actor, by_role=acting.value)
            else:
                user.deactivate(by_actor=actor, by_role=acting.value)
        except DomainError:
            assert (user.role, user.active) == was
            continue
        if was_owner != active_owner():
            assert acting is Role.OWNER
        if was_owner and not active_owner():
            assert not is_self
    assert state(replayed(user.collect_events())) == state(user)


# --- sessions -----------------------------------------------------------------------------------
def new_session(ttl: int = 3600) -> Session:
    session_id = uuid4()
    return Session.start(
        session_id, store_id=STORE_ID, subject_kind="customer", subject_id=uuid4(),
        token_hash=tokens.token_hash(tokens.derive(SECRET, "cs", session_id)), issued_at=T0, ttl_seconds=ttl,
    )


def test_a_session_accepts_its_token_until_it_expires_or_ends():
    session = new_session()
    token = session.token_hash
    assert session.expires_at == (T0 + timedelta(hours=1)).isoformat()
    assert session.accepts(token, T0) and session.accepts(token, T0 + timedelta(minutes=59))
    assert not session.accepts(token, T0 + timedelta(hours=1))
    assert not session.accepts(key_hash(session.id, 0), T0)
    session.end("signed_out")
    assert session.ended and not session.accepts(token, T0)
    session.end("signed_out")  # twice: nothing happens
    events = session.collect_events()
    assert [type(e).__name__ for e in events] == ["Created", "Ended"]
    assert state(replayed(events)) == state(session)


@pytest.mark.parametrize("changes, code", [
    ({"subject_kind": "robot"}, "session.invalid_subject"),
    ({"token_hash": "x"}, "session.invalid_hash"),
    ({"ttl_seconds": 0}, "session.invalid_ttl"),
    ({"ttl_seconds": 91 * 24 * 3600}, "session.invalid_ttl"),
    ({"issued_at": T0.replace(tzinfo=None)}, "session.naive_datetime"),
])
def test_session_start_is_checked(changes, code):
    arguments = dict(store_id=STORE_ID, subject_kind="admin", subject_id=uuid4(), token_hash="a" * 64,
                     issued_at=T0, ttl_seconds=60)
    with pytest.raises(InvalidValue) as error:
        Session.start(uuid4(), **{**arguments, **changes})
    assert error.value.code == code


def test_an_unknown_end_reason_is_refused():
    with pytest.raises(InvalidValue) as error:
        new_session().end("bored")
    assert error.value.code == "session.invalid_reason"
