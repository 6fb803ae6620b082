"""Races, on SQLite and PostgreSQL: no lost update, no oversell, every loser told why."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import pytest

from commands.cart import AddToCart, CreateCart
from commands.checkout import Checkout
from commands.stock import AdjustStock
from domain import ids
from domain.errors import InsufficientStock
from domain.order import Order
from tests.factories import ready_cart

pytestmark = pytest.mark.slow


def run_together(n: int, work):
    """Start n calls of work(i) at the same moment; return each result or exception."""
    barrier = threading.Barrier(n)

    def call(i):
        barrier.wait()
        try:
            return work(i)
        except Exception as error:  # collected and asserted on below
            return error

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def test_fifty_threads_adding_to_one_cart_lose_no_update(app, bus, shop):
    cart_id = UUID(bus.execute(CreateCart(currency="EUR"), shop.ctx).data["cart_id"])
    skus = ["MUG-1", "BOOK-1", "TEE-M"]

    def add(i):
        sku = skus[i % 3]
        return bus.execute(AddToCart(cart_id=cart_id, product_id=shop.products[sku], sku=sku, quantity=2), shop.ctx)

    outcomes = run_together(50, add)
    assert [o for o in outcomes if isinstance(o, Exception)] == []
    cart = app.repository.get(cart_id)
    assert sum(line["quantity"] for line in cart.lines.values()) == 100
    assert {sku: line["quantity"] for sku, line in cart.lines.items()} == {"MUG-1": 34, "BOOK-1": 34, "TEE-M": 32}
    assert cart.version == 1 + 50  # created + one event per add: every add applied exactly once


def test_two_hundred_checkouts_for_ten_units_sell_exactly_ten(app, bus, shop):
    bus.execute(AdjustStock(sku="MUG-1", on_hand=10), shop.ctx)
    carts = [ready_cart(bus, shop, {"MUG-1": 1}, email=f"buyer{i}@example.com") for i in range(200)]

    outcomes = run_together(200, lambda i: bus.execute(Checkout(cart_id=carts[i]), shop.ctx))

    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 10
    assert len(losers) == 190
    assert all(isinstance(e, InsufficientStock) and e.code == "stock.insufficient" for e in losers), {
        type(e).__name__ for e in losers
    }
    item = app.repository.get(ids.stock_item_id(shop.ctx.store_id, "MUG-1"))
    assert (item.on_hand, item.reserved, item.available) == (10, 10, 0)
    assert sorted(item.reservations) == sorted(w.data["order_id"] for w in winners)
    for winner in winners:
        assert isinstance(app.repository.get(UUID(winner.data["order_id"])), Order)
    # Losing carts are still open and nothing of them was written.
    winning_carts = {app.repository.get(UUID(w.data["order_id"])).cart_id for w in winners}
    assert all(app.repository.get(c).is_open for c in carts if c not in winning_carts)
