"""Admin users: invite, change role, deactivate.

`acting_role` is the role of whoever issues the command, filled in by the API
from the authenticated principal (never from the request body): the domain's
owner-only rules need it, and the unit of work cannot see the principal.
A store's first owner is created with CreateAdminUser too, by a bootstrap that
acts as owner.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.admin_user import AdminUser, admin_email
from domain.errors import Conflict
from domain.passwords import hash_password
from domain.store import Store


def _result(user: AdminUser, **extra) -> dict:
    return {"user_id": str(user.id), "role": user.role, "status": user.status, **extra}


class CreateAdminUser(Command):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024, repr=False)
    role: str = Field(max_length=40)
    acting_role: str = Field(max_length=40)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ctx.store_id, ids.admin_user_id(ctx.store_id, self.email)]


def create_admin_user(cmd: CreateAdminUser, uow: UnitOfWork) -> dict:
    store = uow.get(Store, uow.ctx.store_id, "store")
    email = admin_email(cmd.email)
    user_id = ids.admin_user_id(store.id, email)
    if uow.exists(user_id):
        raise Conflict("an admin user with this e-mail already exists", code="admin_user.exists")
    user = AdminUser.invite(
        user_id, store_id=store.id, email=email, password_hash=hash_password(cmd.password), role=cmd.role,
        invited_by=uow.ctx.actor, by_role=cmd.acting_role,
    )
    uow.add(user)
    return _result(user)


class AdminUserCommand(Command):
    user_id: UUID
    acting_role: str = Field(max_length=40)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.user_id]

    def user(self, uow: UnitOfWork) -> AdminUser:
        return uow.get(AdminUser, self.user_id, "admin_user")


class ChangeAdminRole(AdminUserCommand):
    role: str = Field(max_length=40)


def change_admin_role(cmd: ChangeAdminRole, uow: UnitOfWork) -> dict:
    user = cmd.user(uow)
    before = user.role
    user.change_role(cmd.role, by_actor=uow.ctx.actor, by_role=cmd.acting_role)
    return _result(user, previous_role=before)


class DeactivateAdminUser(AdminUserCommand):
    pass


def deactivate_admin_user(cmd: DeactivateAdminUser, uow: UnitOfWork) -> dict:
    user = cmd.user(uow)
    user.deactivate(by_actor=uow.ctx.actor, by_role=cmd.acting_role)
    return _result(user)
