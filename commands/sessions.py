"""Sessions: sign a customer or an admin user in, sign out.

The API chooses the session id, derives the token from it (domain/tokens.py,
kind "cs" or "as") and sends only its SHA-256; the token is never stored.
Every failed sign-in raises the same InvalidCredentials, whatever the cause,
and takes as long as a wrong password (see `_check_password`), so neither the
answer nor its timing tells whether an account exists.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache
from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.admin_user import AdminUser
from domain.customer import Customer
from domain.errors import Conflict, InvalidCredentials
from domain.passwords import hash_password, verify_password
from domain.session import Session

CUSTOMER_TTL_SECONDS = 30 * 24 * 3600
ADMIN_TTL_SECONDS = 12 * 3600


@cache
def _decoy_hash() -> str:
    return hash_password("no account has this password, it only spends the time")


def _check_password(password_hash: str | None, password: str) -> None:
    # Without an account to check against, verify against a decoy anyway: an early
    # return would answer "no such e-mail" in a fraction of the Argon2 time.
    matches = verify_password(password_hash or _decoy_hash(), password)
    if password_hash is None or not matches:
        raise InvalidCredentials()


class SignIn(Command):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024, repr=False)
    session_id: UUID
    token_hash: str = Field(max_length=64, repr=False)

    def subject_id(self, ctx: StoreContext) -> UUID:
        raise NotImplementedError

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.subject_id(ctx), self.session_id]


def _start_session(cmd: SignIn, uow: UnitOfWork, subject_kind: str, subject_id: UUID, ttl_seconds: int) -> dict:
    if uow.exists(cmd.session_id):
        raise Conflict(f"session {cmd.session_id} already exists", code="session.exists")
    session = Session.start(
        cmd.session_id, store_id=uow.ctx.store_id, subject_kind=subject_kind, subject_id=subject_id,
        token_hash=cmd.token_hash, issued_at=datetime.now(timezone.utc), ttl_seconds=ttl_seconds,
    )
    uow.add(session)
    return {"session_id": str(session.id), "subject_id": str(subject_id), "expires_at": session.expires_at}


class SignInCustomer(SignIn):
    ttl_seconds: int = CUSTOMER_TTL_SECONDS

    def subject_id(self, ctx: StoreContext) -> UUID:
        return ids.customer_id(ctx.store_id, self.email)


def sign_in_customer(cmd: SignInCustomer, uow: UnitOfWork) -> dict:
    customer = uow.find(Customer, cmd.subject_id(uow.ctx))
    _check_password(customer.password_hash if customer else None, cmd.password)  # a guest has none
    return _start_session(cmd, uow, "customer", customer.id, cmd.ttl_seconds)


class SignInAdmin(SignIn):
    ttl_seconds: int = ADMIN_TTL_SECONDS

    def subject_id(self, ctx: StoreContext) -> UUID:
        return ids.admin_user_id(ctx.store_id, self.email)


def sign_in_admin(cmd: SignInAdmin, uow: UnitOfWork) -> dict:
    user = uow.find(AdminUser, cmd.subject_id(uow.ctx))
    usable = user is not None and user.can_sign_in
    _check_password(user.password_hash if usable else None, cmd.password)
    return _start_session(cmd, uow, "admin", user.id, cmd.ttl_seconds)


class SignOut(Command):
    session_id: UUID

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.session_id]


def sign_out(cmd: SignOut, uow: UnitOfWork) -> dict:
    session = uow.get(Session, cmd.session_id, "session")
    session.end("signed_out")
    return {"session_id": str(session.id), "ended": True}
