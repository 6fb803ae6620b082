"""Customers: a buyer's order history (read model `order_list`) and the customer list (`customer_list`).

In the order history a buyer is found by customer id, by e-mail, or both: the same thing for
orders placed at checkout (the customer id is derived from the store and the
e-mail, see domain/ids.py), so either finds a returning guest's earlier orders.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from commands.context import StoreContext
from domain.errors import InvalidValue, NotFound
from projections.read_models.timestamps import from_utc_text
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel
from queries.orders import OrderSummary, email_as_stored, newest_first_page, page_request
from queries.pagination import DEFAULT_PAGE_SIZE, Page, page_of


class CustomerQueries(ReadModelQueries):
    projection_name = "order_list"

    def order_history(
        self, ctx: StoreContext, *, customer_id: UUID | None = None, email: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Page[OrderSummary]:
        if customer_id is None and email is None:
            raise InvalidValue("customer_id", "give a customer id or an e-mail", code="query.missing_customer")
        where, params = ["store_id = %s"], [str(ctx.store_id)]
        if customer_id is not None:
            where.append("customer_id = %s")
            params.append(str(customer_id))
        if email is not None:
            where.append("email = %s")
            params.append(email_as_stored(email))
        limit, after = page_request(limit, cursor)
        with self.reading(min_position, timeout_s) as tx:
            return newest_first_page(tx, " AND ".join(where), params, limit, after)


# --- the customer list (read model `customer_list`) ------------------------------------------

CUSTOMER_COLUMNS = "customer_id, email, is_guest, registered_at, orders_count, total_spent, currency, last_order_at"


class CustomerSummary(QueryModel):
    customer_id: UUID
    email: str | None  # None once the customer's personal data has been erased
    is_guest: bool
    registered_at: datetime  # first seen: registration, or a guest's first checkout
    orders_count: int  # orders placed, before any cancellation or refund
    total_spent: int  # minor units: the totals of those orders
    currency: str | None  # of those orders; None before the first
    last_order_at: datetime | None


class CustomerDetail(CustomerSummary):
    address_count: int
    updated_at: datetime


def _customer_fields(row: tuple) -> dict:
    customer_id, email, is_guest, registered_at, orders_count, total_spent, currency, last_order_at = row
    return {
        "customer_id": UUID(customer_id), "email": email, "is_guest": bool(is_guest),
        "registered_at": from_utc_text(registered_at), "orders_count": orders_count, "total_spent": total_spent,
        "currency": currency, "last_order_at": from_utc_text(last_order_at) if last_order_at else None,
    }


class CustomerListQueries(ReadModelQueries):
    """The admin customer list, newest first in keyset pages, and one customer's summary."""

    projection_name = "customer_list"

    def list_customers(
        self, ctx: StoreContext, *, email: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Page[CustomerSummary]:
        where, params = "store_id = %s", [str(ctx.store_id)]
        if email is not None:
            where += " AND email = %s"
            params.append(email_as_stored(email))
        limit, after = page_request(limit, cursor)
        if after is not None:
            registered_at, customer_id = after
            where += " AND (registered_at < %s OR (registered_at = %s AND customer_id < %s))"
            params += [registered_at, registered_at, customer_id]
        with self.reading(min_position, timeout_s) as tx:
            rows = tx.execute(
                f"SELECT {CUSTOMER_COLUMNS} FROM rm_customers WHERE {where} "
                "ORDER BY registered_at DESC, customer_id DESC LIMIT %s",
                (*params, limit + 1),
            ).fetchall()
        return page_of(rows, limit, lambda row: (row[3], row[0]), lambda row: CustomerSummary(**_customer_fields(row)))

    def get_customer(
        self, ctx: StoreContext, customer_id: UUID, *,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> CustomerDetail:
        """NotFound when there is no such customer in this store (another store's is not revealed)."""
        with self.reading(min_position, timeout_s) as tx:
            row = tx.execute(
                f"SELECT {CUSTOMER_COLUMNS}, address_count, updated_at FROM rm_customers "
                "WHERE customer_id = %s AND store_id = %s",
                (str(customer_id), str(ctx.store_id)),
            ).fetchone()
        if row is None:
            raise NotFound("customer", customer_id)
        address_count, updated_at = row[8:]
        return CustomerDetail(
            **_customer_fields(row[:8]), address_count=address_count, updated_at=from_utc_text(updated_at)
        )
