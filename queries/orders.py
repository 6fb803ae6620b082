"""Orders: the admin order list and an order's detail (read model `order_list`).

The list is newest first — placed_at descending, order id descending to break
ties — in keyset pages, so many orders placed in the same microsecond still page
through exactly once each. Filters: status (one or several), placed date range
(from inclusive, to exclusive), buyer e-mail (exact, case-insensitive).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from commands.context import StoreContext
from domain.errors import InvalidValue, NotFound
from domain.order import STATES
from projections.read_models.timestamps import from_utc_text
from queries.consistency import DEFAULT_TIMEOUT_S, ReadModelQueries
from queries.model import QueryModel
from queries.moments import stored
from queries.pagination import DEFAULT_PAGE_SIZE, Page, check_limit, decode_cursor, page_of

SUMMARY_COLUMNS = "order_id, status, currency, total, refunded, customer_id, email, item_count, placed_at, paid_at"


class OrderSummary(QueryModel):
    order_id: UUID
    status: str
    currency: str
    total: int  # minor units, what the buyer was charged (goods, shipping, tax)
    refunded: int
    customer_id: UUID | None
    email: str | None
    item_count: int
    placed_at: datetime
    paid_at: datetime | None


class OrderLine(QueryModel):
    line_no: int
    sku: str
    product_id: UUID
    title: str
    quantity: int
    unit_price: int
    amount: int  # unit_price × quantity, as priced (net or gross, per the store's tax mode)
    tax: int
    gross: int
    tax_class: str
    unit_cost: int
    fulfilled: int  # units shipped so far


class OrderDetail(OrderSummary):
    subtotal: int
    shipping: int
    tax: int
    paid_amount: int
    country: str | None
    shipping_method: str | None
    updated_at: datetime
    lines: tuple[OrderLine, ...]


def _summary_fields(row: tuple) -> dict:
    order_id, status, currency, total, refunded, customer_id, email, item_count, placed_at, paid_at = row
    return {
        "order_id": UUID(order_id), "status": status, "currency": currency, "total": total, "refunded": refunded,
        "customer_id": UUID(customer_id) if customer_id else None, "email": email, "item_count": item_count,
        "placed_at": from_utc_text(placed_at), "paid_at": from_utc_text(paid_at) if paid_at else None,
    }


def _sort_key(row: tuple) -> tuple[str, str]:
    return row[8], row[0]  # placed_at, order_id


def page_request(limit: int, cursor: str | None) -> tuple[int, tuple[str, ...] | None]:
    """Checked before any waiting or reading: the page size, and the sort key to continue after."""
    return check_limit(limit), decode_cursor(cursor, 2) if cursor is not None else None


def newest_first_page(
    tx, where: str, params: Sequence, limit: int, after: tuple[str, ...] | None
) -> Page[OrderSummary]:
    """One page of order summaries matching `where` (over rm_orders), newest first, after a sort key."""
    if after is not None:
        placed_at, order_id = after
        where += " AND (placed_at < %s OR (placed_at = %s AND order_id < %s))"
        params = (*params, placed_at, placed_at, order_id)
    rows = tx.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM rm_orders WHERE {where} ORDER BY placed_at DESC, order_id DESC LIMIT %s",
        (*params, limit + 1),
    ).fetchall()
    return page_of(rows, limit, _sort_key, lambda row: OrderSummary(**_summary_fields(row)))


def email_as_stored(email: str) -> str:
    """As the read model stores it; no format check: an address that is not there simply matches nothing."""
    return email.strip().lower()


def _statuses(status: str | Sequence[str]) -> tuple[str, ...]:
    wanted = (status,) if isinstance(status, str) else tuple(status)
    unknown = [s for s in wanted if s not in STATES]
    if unknown or not wanted:
        raise InvalidValue("status", f"one or more of {', '.join(STATES)}", code="query.invalid_status")
    return wanted


def order_filter(
    store_id: UUID, *, status: str | Sequence[str] | None, placed_from: datetime | None,
    placed_to: datetime | None, email: str | None,
) -> tuple[str, tuple]:
    """The WHERE clause and its parameters for the list's filters."""
    where, params = ["store_id = %s"], [str(store_id)]
    if status is not None:
        wanted = _statuses(status)
        where.append(f"status IN ({', '.join(['%s'] * len(wanted))})")
        params += wanted
    if placed_from is not None:
        where.append("placed_at >= %s")
        params.append(stored("placed_from", placed_from))
    if placed_to is not None:
        where.append("placed_at < %s")
        params.append(stored("placed_to", placed_to))
    if placed_from is not None and placed_to is not None and placed_to <= placed_from:
        raise InvalidValue("placed_to", "must be after placed_from", code="query.invalid_range")
    if email is not None:
        where.append("email = %s")
        params.append(email_as_stored(email))
    return " AND ".join(where), tuple(params)


class OrderQueries(ReadModelQueries):
    projection_name = "order_list"

    def list_orders(
        self, ctx: StoreContext, *, status: str | Sequence[str] | None = None,
        placed_from: datetime | None = None, placed_to: datetime | None = None, email: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Page[OrderSummary]:
        where, params = order_filter(
            ctx.store_id, status=status, placed_from=placed_from, placed_to=placed_to, email=email
        )
        limit, after = page_request(limit, cursor)
        with self.reading(min_position, timeout_s) as tx:
            return newest_first_page(tx, where, params, limit, after)

    def get_order(
        self, ctx: StoreContext, order_id: UUID, *,
        min_position: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> OrderDetail:
        """NotFound when there is no such order in this store (another store's order is not revealed)."""
        with self.reading(min_position, timeout_s) as tx:
            row = tx.execute(
                f"SELECT {SUMMARY_COLUMNS}, subtotal, shipping, tax, paid_amount, country, shipping_method, updated_at "
                "FROM rm_orders WHERE order_id = %s AND store_id = %s",
                (str(order_id), str(ctx.store_id)),
            ).fetchone()
            if row is None:
                raise NotFound("order", order_id)
            lines = tx.execute(
                "SELECT line_no, sku, product_id, title, quantity, unit_price, amount, tax, gross, tax_class, "
                "unit_cost, fulfilled FROM rm_order_lines WHERE order_id = %s ORDER BY line_no",
                (str(order_id),),
            ).fetchall()
        subtotal, shipping, tax, paid_amount, country, shipping_method, updated_at = row[10:]
        return OrderDetail(
            **_summary_fields(row[:10]), subtotal=subtotal, shipping=shipping, tax=tax, paid_amount=paid_amount,
            country=country, shipping_method=shipping_method, updated_at=from_utc_text(updated_at),
            lines=tuple(_line(line) for line in lines),
        )


def _line(row: tuple) -> OrderLine:
    line_no, sku, product_id, title, quantity, unit_price, amount, tax, gross, tax_class, unit_cost, fulfilled = row
    return OrderLine(
        line_no=line_no, sku=sku, product_id=UUID(product_id), title=title, quantity=quantity, unit_price=unit_price,
        amount=amount, tax=tax, gross=gross, tax_class=tax_class, unit_cost=unit_cost, fulfilled=fulfilled,
    )
