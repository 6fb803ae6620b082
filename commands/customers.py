"""Customer accounts: registration (or upgrading a guest), addresses."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.customer import Customer, normalise_email
from domain.errors import Conflict
from domain.passwords import hash_password


class RegisterCustomer(Command):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024, repr=False)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [ids.customer_id(ctx.store_id, self.email)]


def register_customer(cmd: RegisterCustomer, uow: UnitOfWork) -> dict:
    email = normalise_email(cmd.email)
    customer_id = ids.customer_id(uow.ctx.store_id, email)
    password_hash = hash_password(cmd.password)
    existing = uow.find(Customer, customer_id)
    if existing is None:
        uow.add(Customer.register(customer_id, store_id=uow.ctx.store_id, email=email, password_hash=password_hash))
    elif existing.is_guest:
        existing.set_password(password_hash)  # a returning guest becomes an account, history intact
    else:
        raise Conflict("an account with this e-mail already exists", code="customer.exists")
    return {"customer_id": str(customer_id)}


class CustomerCommand(Command):
    customer_id: UUID

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.customer_id]


class AddCustomerAddress(CustomerCommand):
    address_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    address: dict


def add_customer_address(cmd: AddCustomerAddress, uow: UnitOfWork) -> dict:
    uow.get(Customer, cmd.customer_id, "customer").add_address(cmd.address_id, cmd.address)
    return {"address_id": cmd.address_id}


class RemoveCustomerAddress(CustomerCommand):
    address_id: str = Field(max_length=40)


def remove_customer_address(cmd: RemoveCustomerAddress, uow: UnitOfWork) -> dict:
    uow.get(Customer, cmd.customer_id, "customer").remove_address(cmd.address_id)
    return {}
