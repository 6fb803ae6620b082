"""The projection framework on SQLite and PostgreSQL: exactly-once, halting on a poison event, resuming."""

from __future__ import annotations

from uuid import UUID

import pytest

from commands.checkout import Checkout
from commands.config import EventStoreConfig
from commands.orders import CancelOrder, MarkOrderPaid
from projections.read_models.orders import OrderList
from projections.runner import ProjectionHalted, ProjectionRunner
from projections.views import ViewStore
from tests.factories import ready_cart


def place(bus, shop, n: int) -> list[UUID]:
    return [UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1})), shop.ctx).data["order_id"])
            for _ in range(n)]


def rows(views) -> list[tuple]:
    with views.transaction() as tx:
        return tx.execute("SELECT order_id, status, total, refunded, version FROM rm_orders ORDER BY order_id").fetchall()


def test_order_list_follows_the_lifecycle_and_applies_each_event_once(app, bus, shop, views):
    orders = place(bus, shop, 3)
    bus.execute(MarkOrderPaid(order_id=orders[0], amount=1990, reference="pi"), shop.ctx)
    bus.execute(CancelOrder(order_id=orders[1]), shop.ctx)
    runner = ProjectionRunner(app, views, OrderList(), batch_size=2)

    first = runner.catch_up()
    assert first.applied == 5  # 3 placed + paid + cancelled; nothing else is read
    assert first.position == views.position("order_list") == max(n.id for n in app.recorder.select_notifications(1, 10_000))
    statuses = {UUID(r[0]): r[1] for r in rows(views)}
    assert statuses == {orders[0]: "paid", orders[1]: "cancelled", orders[2]: "pending_payment"}
    assert runner.catch_up().applied == 0  # running again changes nothing


class Flaky(OrderList):
    """An order list whose handler breaks on one order until it is 'fixed'."""

    name = "order_list"
    poison: str | None = None

    def placed(self, tx, event):
        if str(event.originator_id) == self.poison:
            raise RuntimeError("bug in handler")
        super().placed(tx, event)


def test_poison_event_halts_without_losing_place_and_resumes_after_fix(app, bus, shop, views, tmp_path):
    orders = place(bus, shop, 6)
    projection = Flaky()
    projection.poison = str(orders[3])
    runner = ProjectionRunner(app, views, projection, batch_size=10)

    with pytest.raises(ProjectionHalted) as halted:
        runner.catch_up()
    applied = {UUID(r[0]) for r in rows(views)}
    assert applied == set(orders[:3])  # everything before the poison event, nothing after
    position, error = views.status("order_list")
    assert position == halted.value.position and "bug in handler" in error
    with pytest.raises(ProjectionHalted):  # still halted at the same event; it is never skipped
        runner.catch_up()
    assert views.status("order_list")[0] == position

    projection.poison = None  # the fix
    runner.catch_up()
    assert views.status("order_list") == (views.position("order_list"), None)
    assert {UUID(r[0]) for r in rows(views)} == set(orders)

    # Equal, row for row, to a clean build from position 0 into a fresh view store
    # (a SQLite one for both event stores: views do not depend on where events live).
    fresh = ViewStore(EventStoreConfig(kind="sqlite", sqlite_path=str(tmp_path / "fresh.sqlite")))
    ProjectionRunner(app, fresh, OrderList()).catch_up()
    assert rows(fresh) == rows(views)
    fresh.close()
