"""A new store, ready for the API: the store, its first owner, a publishable and a secret key.

The only way in that needs no credential, so it is a CLI command (`trafi stores create`)
and a function for tests and benchmarks — never an HTTP route.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from commands.admin_users import CreateAdminUser
from commands.api_keys import CreateApiKey
from commands.bus import CommandBus
from commands.context import StoreContext
from commands.store import OpenStore
from domain import ids, tokens
from domain.roles import PERMISSIONS


@dataclass(frozen=True)
class NewStore:
    store_id: UUID
    owner_id: UUID
    publishable_key: str
    secret_key: str


def create_api_key(bus: CommandBus, ctx: StoreContext, secret: bytes, *, kind: str, name: str,
                   scopes: tuple[str, ...] = ()) -> str:
    key_id = uuid.uuid4()
    token = tokens.derive(secret, "pk" if kind == "publishable" else "sk", key_id, 0)
    bus.execute(CreateApiKey(key_id=key_id, kind=kind, name=name, scopes=scopes,
                             secret_hash=tokens.token_hash(token)), ctx)
    return token


def bootstrap_store(
    bus: CommandBus, secret: bytes, *, slug: str, name: str, currency: str = "EUR", origin_country: str = "DE",
    prices_include_tax: bool = True, owner_email: str, owner_password: str,
) -> NewStore:
    ctx = StoreContext(store_id=ids.store_id(slug), actor="bootstrap")
    bus.execute(OpenStore(slug=slug, name=name, currency=currency, origin_country=origin_country,
                          prices_include_tax=prices_include_tax), ctx)
    owner = bus.execute(CreateAdminUser(email=owner_email, password=owner_password, role="owner",
                                        acting_role="owner"), ctx)
    return NewStore(
        store_id=ctx.store_id, owner_id=UUID(owner.data["user_id"]),
        publishable_key=create_api_key(bus, ctx, secret, kind="publishable", name="storefront"),
        secret_key=create_api_key(bus, ctx, secret, kind="secret", name="owner (bootstrap)",
                                  scopes=tuple(PERMISSIONS)),
    )
