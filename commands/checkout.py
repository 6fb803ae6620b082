"""Checkout: cart → order, with every unit reserved, in one transaction.

One `save()` holds the cart's CheckedOut, the order's Placed, every StockItem's
Reserved (and a guest Customer on first purchase). Stock items are versioned
aggregates, so of two checkouts racing for the last unit exactly one commits;
the other retries against the new stock level and gets `stock.insufficient`.
"""

from __future__ import annotations

import secrets
from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.cart import current_prices
from commands.context import StoreContext
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.cart import Cart
from domain.customer import Customer
from domain.errors import Conflict, InvalidValue
from domain.order import Order
from domain.product import Product
from domain.stock import StockItem
from domain.store import Store
from domain.tokens import token_hash


class Checkout(Command):
    cart_id: UUID
    # The total the buyer saw. If re-pricing changes it, checkout stops so they can look again.
    expected_total: int | None = Field(default=None)
    # A signed-in customer: the order is theirs, whatever e-mail the cart had.
    customer_id: UUID | None = None

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.cart_id, ctx.store_id, *([self.customer_id] if self.customer_id else [])]


def checkout(cmd: Checkout, uow: UnitOfWork) -> dict:
    ctx = uow.ctx
    cart = uow.get(Cart, cmd.cart_id, "cart")
    store = uow.get(Store, ctx.store_id, "store")
    if cmd.customer_id is not None and cart.is_open:
        customer = uow.get(Customer, cmd.customer_id, "customer")
        cart.identify(customer.id, customer.email)
    _check_ready(cart)
    order_id = ids.order_id(ctx.store_id, cart.id)
    stock_ids = {sku: ids.stock_item_id(ctx.store_id, sku) for sku in cart.lines}
    # Everything else checkout touches, in one round trip.
    uow.load([*stock_ids.values(), *(l["product_id"] for l in cart.lines.values()), cart.customer_id])

    repriced = cart.reprice(current_prices(cart, uow))
    totals = cart.totals(store)
    if cmd.expected_total is not None and totals.total != cmd.expected_total:
        raise Conflict(
            f"the total is now {totals.total}, not {cmd.expected_total}; review the cart",
            code="checkout.total_changed",
        )
    for sku, line in cart.lines.items():
        uow.get(StockItem, stock_ids[sku], "stock_item").reserve(order_id, line["quantity"])

    if uow.find(Customer, cart.customer_id) is None:
        uow.add(Customer.register(cart.customer_id, store_id=ctx.store_id, email=cart.email.value, password_hash=None))

    token = secrets.token_urlsafe(24)
    uow.add(Order(
        id=order_id, store_id=ctx.store_id, cart_id=cart.id, customer_id=cart.customer_id, email=cart.email,
        currency=cart.currency, lines=_order_lines(cart, uow), totals=totals.to_dict(), country=cart.country,
        shipping_address=cart.shipping_address, shipping_method=cart.shipping_method, token_hash=token_hash(token),
    ))
    cart.mark_checked_out(order_id)
    return {
        "order_id": str(order_id), "order_token": token, "total": totals.total,
        "currency": cart.currency, "repriced": repriced,
    }


def _check_ready(cart: Cart) -> None:
    if not cart.is_open:
        raise Conflict(f"cart already checked out as order {cart.order_id}", code="cart.checked_out")
    if not cart.lines:
        raise InvalidValue("cart_id", "the cart is empty", code="checkout.empty_cart")
    if cart.email is None:
        raise InvalidValue("email", "an e-mail address is needed to check out", code="checkout.missing_email")
    if cart.country is None:
        raise InvalidValue("shipping_address", "a shipping address is needed", code="checkout.missing_address")
    if cart.shipping_method is None:
        raise InvalidValue("shipping_method", "choose a shipping method", code="checkout.missing_shipping_method")


def _order_lines(cart: Cart, uow: UnitOfWork) -> list[dict]:
    """Snapshot of what was bought, including the unit cost at that moment (for gross profit)."""
    lines = []
    for sku, line in cart.lines.items():
        variant = uow.get(Product, line["product_id"], "product").variants[sku]
        lines.append({**line, "unit_cost": variant["unit_cost"]})
    return lines
