"""Customer order history: one buyer's orders, newest first (read model `order_list`).

A buyer is found by customer id, by e-mail, or both. They are the same thing for
orders placed at checkout (the customer id is derived from the store and the
e-mail, see domain/ids.py), so either finds a returning guest's earlier orders.
"""

from __future__ import annotations

from uuid import UUID

from commands.context import StoreContext
from domain.errors import InvalidValue
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.orders import OrderSummary, email_as_stored, newest_first_page, page_request
from queries.pagination import DEFAULT_PAGE_SIZE, Page


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
