"""Password reset by e-mailed link: request a link, then use it to set a new password.

The API, not the handler, makes the token: it picks `reset_id` (uuid4), derives
`token = tokens.derive(secret_key, "rt", reset_id)`, sends `token_hash(token)`
with the request and mails the token only if the result says `recorded`. The
secret key therefore never reaches the write side, and the event log holds the
hash only. To use a link, the API parses the token (`tokens.parse` → "rt",
reset_id) and sends the id and the hash.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.customer import Customer, normalise_email
from domain.errors import Conflict
from domain.password_reset import PasswordResetRequest, invalid_reset_token
from domain.passwords import hash_password

_SHA256_HEX = r"^[0-9a-f]{64}$"


def now() -> datetime:
    return datetime.now(timezone.utc)


class RequestPasswordReset(Command):
    email: str = Field(max_length=254)
    reset_id: UUID
    token_hash: str = Field(pattern=_SHA256_HEX)
    ttl_seconds: int = Field(default=3600, ge=300, le=86_400)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ids.customer_id(ctx.store_id, self.email), self.reset_id]


def request_password_reset(cmd: RequestPasswordReset, uow: UnitOfWork) -> dict:
    """Records a reset link for an account; for an unknown e-mail or a guest, does nothing.

    Both outcomes are a success, so that the API can answer alike and not reveal
    which e-mails have accounts; only `recorded` tells it whether to send a mail.
    """
    customer = uow.find(Customer, ids.customer_id(uow.ctx.store_id, normalise_email(cmd.email)))
    if customer is None or customer.is_guest:
        return {"recorded": False}
    if uow.exists(cmd.reset_id):
        raise Conflict(f"password reset {cmd.reset_id} already exists", code="customer.reset_exists")
    request = PasswordResetRequest.request(
        cmd.reset_id, customer=customer, token_hash=cmd.token_hash,
        expires_at=now() + timedelta(seconds=cmd.ttl_seconds),
    )
    uow.add(request)
    return {
        "recorded": True, "reset_id": str(request.id), "customer_id": str(customer.id),
        "expires_at": request.expires_at.isoformat(),
    }


class ResetPassword(Command):
    reset_id: UUID
    token_hash: str = Field(max_length=64)
    new_password: str = Field(max_length=1024, repr=False)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.reset_id]


def reset_password(cmd: ResetPassword, uow: UnitOfWork) -> dict:
    request = uow.find(PasswordResetRequest, cmd.reset_id)
    if request is None:
        raise invalid_reset_token()
    customer = uow.find(Customer, request.customer_id)
    moment = now()
    # Checked before hashing: Argon2 is slow on purpose, and a bad link should not cost it.
    request.check_token(customer, cmd.token_hash, moment)
    request.reset_password(
        customer, token_hash=cmd.token_hash, new_password_hash=hash_password(cmd.new_password), now=moment
    )
    return {"customer_id": str(customer.id)}
