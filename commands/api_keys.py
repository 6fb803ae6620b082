"""API keys: create, rotate, revoke.

The caller (the HTTP API) chooses the key id, derives the token with
domain.tokens.derive(secret, "pk"/"sk", key_id, generation) and sends only its
SHA-256. Results name the key and its generation — never a token — which is
all the API needs to derive the same token again on an idempotent replay.
"""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain.api_key import ApiKey
from domain.errors import Conflict
from domain.store import Store


def _result(key: ApiKey, **extra) -> dict:
    return {"key_id": str(key.id), "kind": key.kind, "generation": key.generation, "status": key.status, **extra}


class CreateApiKey(Command):
    key_id: UUID
    kind: str = Field(max_length=20)
    name: str = Field(max_length=200)
    scopes: tuple[str, ...] = Field(default=(), max_length=100)
    secret_hash: str = Field(max_length=64, repr=False)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ctx.store_id, self.key_id]


def create_api_key(cmd: CreateApiKey, uow: UnitOfWork) -> dict:
    store = uow.get(Store, uow.ctx.store_id, "store")
    if uow.exists(cmd.key_id):
        raise Conflict(f"API key {cmd.key_id} already exists", code="api_key.exists")
    key = ApiKey.create(
        cmd.key_id, store_id=store.id, kind=cmd.kind, name=cmd.name, scopes=cmd.scopes,
        secret_hash=cmd.secret_hash, created_by=uow.ctx.actor,
    )
    uow.add(key)
    return _result(key, name=key.name, scopes=list(key.scopes))


class ApiKeyCommand(Command):
    key_id: UUID

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.key_id]

    def key(self, uow: UnitOfWork) -> ApiKey:
        return uow.get(ApiKey, self.key_id, "api_key")


class RotateApiKey(ApiKeyCommand):
    secret_hash: str = Field(max_length=64, repr=False)
    # The generation secret_hash was derived for (the key's current one + 1): a token is
    # bound to its generation, so a rotation that lost a race must fail, not install a dud.
    generation: int
    grace_seconds: int = 0


def rotate_api_key(cmd: RotateApiKey, uow: UnitOfWork) -> dict:
    key = cmd.key(uow)
    key.rotate(cmd.secret_hash, cmd.grace_seconds, datetime.now(timezone.utc), for_generation=cmd.generation)
    return _result(key, previous_valid_until=key.previous_valid_until)


class RevokeApiKey(ApiKeyCommand):
    pass


def revoke_api_key(cmd: RevokeApiKey, uow: UnitOfWork) -> dict:
    key = cmd.key(uow)
    key.revoke(uow.ctx.actor)
    return _result(key)
