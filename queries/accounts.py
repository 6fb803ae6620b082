"""A customer's own account: e-mail, whether it is a guest, saved addresses.

Read from the write side (the Customer aggregate), not from a read model,
because the account screen must show a change the moment it is saved — the
customer who just added an address expects to see it in the very next page,
with no position to wait for — and because it is one small aggregate loaded by
id (a snapshot plus a few events), which costs what a read-model row would.
"""

from __future__ import annotations

from uuid import UUID

from commands.application import TrafiApplication
from commands.context import StoreContext
from domain.customer import ADDRESS_FIELDS, Customer
from domain.errors import NotFound
from domain.personal import reveal
from queries.model import QueryModel


class SavedAddress(QueryModel):
    address_id: str
    country: str
    name: str
    line1: str
    line2: str
    city: str
    postal_code: str
    phone: str


class Account(QueryModel):
    customer_id: UUID
    email: str | None  # None once the customer's personal data has been erased
    is_guest: bool
    addresses: tuple[SavedAddress, ...]  # in the order saved


def load_customer(app: TrafiApplication, ctx: StoreContext, customer_id: UUID) -> Customer:
    """The customer of this store; NotFound for any other id (another store's customer is not revealed)."""
    found, _ = app.load_many([customer_id])
    customer = found.get(customer_id)
    if not isinstance(customer, Customer) or customer.store_id != ctx.store_id:
        raise NotFound("customer", customer_id)
    return customer


def _address(address_id: str, saved: dict) -> SavedAddress:
    details = reveal(saved["details"]) or {}
    return SavedAddress(
        address_id=address_id, country=saved["country"], **{k: str(details.get(k) or "") for k in ADDRESS_FIELDS}
    )


class AccountQueries:
    def __init__(self, app: TrafiApplication):
        self.app = app

    def get_account(self, ctx: StoreContext, customer_id: UUID) -> Account:
        customer = load_customer(self.app, ctx, customer_id)
        email = reveal(customer.email)
        return Account(
            customer_id=customer.id, email=email if isinstance(email, str) else None, is_guest=customer.is_guest,
            addresses=tuple(_address(address_id, saved) for address_id, saved in customer.addresses.items()),
        )
