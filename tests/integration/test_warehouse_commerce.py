"""Domain events in the warehouse: the funnel without a storefront, orders with their gross profit.

Real event stores (SQLite and PostgreSQL), the real telemetry log beside them, a DuckDB file.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from autopilot.telemetry.log import TelemetryLog
from autopilot.warehouse.commerce import PaymentFees
from autopilot.warehouse.feeder import WarehouseFeeder
from autopilot.warehouse.store import Warehouse
from commands.cart import AddToCart, ChooseShippingMethod, CreateCart, IdentifyBuyer, SetShippingAddress
from commands.catalog import ChangeProductDetails, CreateProduct
from commands.checkout import Checkout
from commands.orders import MarkOrderPaid, RefundOrder
from domain.cart import Cart
from tests.factories import ADDRESS_DE, ready_cart
from tests.unit.test_warehouse_feeder import TABLES, event, snapshot, us


@pytest.fixture
def telemetry(app):
    log = TelemetryLog.open(app.config)
    yield log
    log.close()


@pytest.fixture
def warehouse(tmp_path):
    store = Warehouse(tmp_path / "warehouse.duckdb")
    yield store
    store.close()


def rows(warehouse: Warehouse, sql: str, params=()) -> list[tuple]:
    with warehouse.reading() as cur:
        return cur.execute(sql, list(params)).fetchall()


def feed(warehouse, app, telemetry=None, **options) -> WarehouseFeeder:
    feeder = WarehouseFeeder(warehouse, app=app, telemetry=telemetry, **options)
    feeder.catch_up()
    return feeder


def cart_of(bus, shop, lines: dict[str, int], visitor_id: str | None = None) -> UUID:
    """A cart ready to check out (tests/factories.ready_cart), started for a storefront visitor."""
    if visitor_id is None:
        return ready_cart(bus, shop, lines)
    ctx = shop.ctx
    cart_id = UUID(bus.execute(CreateCart(currency="EUR", visitor_id=visitor_id, email="buyer@example.com"),
                               ctx).data["cart_id"])
    for sku, quantity in lines.items():
        bus.execute(AddToCart(cart_id=cart_id, product_id=shop.products[sku], sku=sku, quantity=quantity), ctx)
    bus.execute(SetShippingAddress(cart_id=cart_id, address=ADDRESS_DE), ctx)
    bus.execute(ChooseShippingMethod(cart_id=cart_id, rate_id="standard"), ctx)
    return cart_id


def place_paid_order(bus, shop, lines: dict[str, int], visitor_id: str | None = None) -> tuple[UUID, UUID, dict]:
    cart_id = cart_of(bus, shop, lines, visitor_id)
    placed = bus.execute(Checkout(cart_id=cart_id), shop.ctx).data
    order_id = UUID(placed["order_id"])
    bus.execute(MarkOrderPaid(order_id=order_id, amount=placed["total"], reference="bank transfer"), shop.ctx)
    return cart_id, order_id, placed


def test_an_order_carries_the_money_of_gross_profit(app, bus, shop, warehouse):
    cart_id, order_id, placed = place_paid_order(bus, shop, {"MUG-1": 2, "TEE-M": 1})
    bus.execute(RefundOrder(order_id=order_id, amount=1500, restock={"MUG-1": 1}), shop.ctx)
    feed(warehouse, app, fees=PaymentFees(rate_bp=200, fixed_minor=30))

    order = app.repository.get(order_id)
    total, tax = order.totals["total"], order.totals["tax"]
    revenue = total - tax
    refunded_net = (2 * 1500 * revenue + total) // (2 * total)  # the order's net share of the refund, half up
    cogs = 2 * 600 + 900 - 600  # one mug is back on the shelf
    fee = (total * 200 * 2 + 10_000) // 20_000 + 30
    assert rows(warehouse, "SELECT store_id, cart_id, visitor_id, revenue_minor, tax_minor, cogs_minor, "
                           "discount_minor, shipping_subsidy_minor, payment_fee_minor, refunded_minor, "
                           "paid_at IS NOT NULL, country FROM orders") == [
        (str(shop.ctx.store_id), str(cart_id), f"cart:{cart_id}", revenue, tax, cogs, 0, 0, fee, refunded_net,
         True, "DE")]
    profit = revenue - refunded_net - cogs - fee
    assert rows(warehouse, "SELECT gross_profit_minor FROM order_profit") == [(profit,)]
    assert rows(warehouse, "SELECT visitor_id, orders, revenue_minor, gross_profit_minor FROM visitor_outcomes") == [
        (f"cart:{cart_id}", 1, revenue - refunded_net, profit)]
    assert rows(warehouse, "SELECT grain, orders, revenue_minor, gross_profit_minor, carts, carts_checked_out "
                           "FROM metrics_by_period ORDER BY grain") == [
        (grain, 1, revenue - refunded_net, profit, 1, 1) for grain in ("day", "month", "week")]
    net = {line["sku"]: line["net"] for line in order.totals["lines"]}
    assert rows(warehouse, "SELECT product_id, purchases, units_sold, revenue_minor, add_to_carts "
                           "FROM product_stats_by_period WHERE grain = 'day' ORDER BY units_sold") == [
        (str(shop.products["TEE-M"]), 1, 1, net["TEE-M"], 1), (str(shop.products["MUG-1"]), 1, 2, net["MUG-1"], 1)]


def test_unpaid_orders_count_in_the_funnel_not_in_the_money(app, bus, shop, warehouse):
    cart_id = ready_cart(bus, shop, {"BOOK-1": 1})
    bus.execute(Checkout(cart_id=cart_id), shop.ctx)
    feed(warehouse, app)
    assert rows(warehouse, "SELECT max_step FROM visitor_days") == [(5,)]  # order placed: the payment step
    assert rows(warehouse, "SELECT count(*) FROM visitor_outcomes") == [(0,)]
    assert rows(warehouse, "SELECT orders, revenue_minor, carts, carts_checked_out FROM metrics_by_period "
                           "WHERE grain = 'day'") == [(0, 0, 1, 1)]


def test_carts_make_a_funnel_even_when_the_storefront_sends_nothing(app, bus, shop, warehouse):
    ctx = shop.ctx
    carts = [UUID(bus.execute(CreateCart(currency="EUR"), ctx).data["cart_id"]) for _ in range(4)]
    for cart_id in carts[1:]:
        bus.execute(AddToCart(cart_id=cart_id, product_id=shop.products["MUG-1"], sku="MUG-1", quantity=1), ctx)
    for cart_id in carts[2:]:
        bus.execute(IdentifyBuyer(cart_id=cart_id, email=f"{cart_id.hex[:6]}@example.com"), ctx)
    bus.execute(SetShippingAddress(cart_id=carts[3], address=ADDRESS_DE), ctx)
    _, _, _ = place_paid_order(bus, shop, {"TEE-M": 1})
    feed(warehouse, app, commerce_batch=3)  # small batches: a cart's events land in different ones

    assert rows(warehouse, "SELECT visitor_id, max_step FROM visitor_days WHERE visitor_id IN (SELECT 'cart:' || "
                           "unnest(?::VARCHAR[])) ORDER BY max_step", [[str(c) for c in carts]]) == [
        (f"cart:{carts[0]}", 0), (f"cart:{carts[1]}", 2), (f"cart:{carts[2]}", 3), (f"cart:{carts[3]}", 4)]
    day = dict(rows(warehouse, "SELECT step, visitors FROM funnel_by_period WHERE grain = 'day'"))
    assert day == {0: 5, 1: 4, 2: 4, 3: 3, 4: 2, 5: 1, 6: 1}
    # Four carts got an item, one was checked out: abandonment 3 of 4.
    assert rows(warehouse, "SELECT carts, carts_checked_out FROM metrics_by_period WHERE grain = 'day'") == [(4, 1)]


def test_a_cart_links_its_orders_to_the_storefront_visitor(app, bus, shop, warehouse, telemetry):
    store = str(shop.ctx.store_id)
    now = datetime.now(timezone.utc)
    telemetry.append(store, [event(0, now, visitor="v-42", session="s-42", device="mobile", country="AT",
                                   source="newsletter")], received_at_us=us(now))
    _, order_id, _ = place_paid_order(bus, shop, {"MUG-1": 1}, visitor_id="v-42")
    feed(warehouse, app, telemetry, commerce_batch=4, telemetry_batch=1)

    assert rows(warehouse, "SELECT visitor_id, device, country, traffic_source FROM orders") == [
        ("v-42", "mobile", "AT", "newsletter")]
    assert rows(warehouse, "SELECT visitor_id, max_step, device FROM visitor_days") == [("v-42", 6, "mobile")]
    assert rows(warehouse, "SELECT visitor_id, orders FROM visitor_outcomes") == [("v-42", 1)]


def test_a_cart_created_before_visitor_ids_existed_still_loads_and_feeds(app, bus, shop, warehouse):
    cart_id = uuid4()
    legacy_state = {  # exactly what trafi.cart.created.v1 looked like before `visitor_id`
        "originator_id": {"_type_": "uuid_hex", "_data_": cart_id.hex},
        "originator_version": 1,
        "timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-15T10:00:00+00:00"},
        "originator_topic": "trafi.cart.v1",
        "store_id": {"_type_": "uuid_hex", "_data_": shop.ctx.store_id.hex},
        "currency": "EUR", "customer_id": None, "email": None,
    }
    app.recorder.insert_events([StoredEvent(originator_id=cart_id, originator_version=1,
                                            topic="trafi.cart.created.v1", state=json.dumps(legacy_state).encode())])
    cart = app.repository.get(cart_id)
    assert isinstance(cart, Cart) and cart.visitor_id is None and cart.store_id == shop.ctx.store_id
    bus.execute(AddToCart(cart_id=cart_id, product_id=shop.products["MUG-1"], sku="MUG-1", quantity=1), shop.ctx)
    feed(warehouse, app)
    assert rows(warehouse, "SELECT visitor_id, max_step FROM visitor_days WHERE day = DATE '2026-01-15'") == [
        (f"cart:{cart_id}", 0)]
    assert rows(warehouse, "SELECT visitor_id, first_item_day IS NOT NULL FROM carts") == [(f"cart:{cart_id}", True)]


def test_categories_follow_their_products_whichever_log_arrives_first(app, bus, shop, warehouse, telemetry):
    store = str(shop.ctx.store_id)
    now = datetime.now(timezone.utc)
    product_id = UUID(bus.execute(CreateProduct(handle="vase", title="Vase", categories=["home", "decor"]),
                                  shop.ctx).data["product_id"])
    telemetry.append(store, [event(1, now, product=str(product_id))], received_at_us=us(now))
    WarehouseFeeder(warehouse, telemetry=telemetry).catch_up()  # the storefront's view, before the product
    assert rows(warehouse, "SELECT category FROM events") == [(None,)]

    feed(warehouse, app)
    assert rows(warehouse, "SELECT category FROM products WHERE product_id = ?", [str(product_id)]) == [("decor",)]
    assert rows(warehouse, "SELECT category FROM events WHERE kind = 'product_view'") == [("decor",)]
    bus.execute(ChangeProductDetails(product_id=product_id, title="Vase", categories=["garden"]), shop.ctx)
    feed(warehouse, app)
    assert rows(warehouse, "SELECT DISTINCT category FROM product_stats_by_period WHERE product_id = ?",
                [str(product_id)]) == [("garden",)]
    assert rows(warehouse, "SELECT category FROM events WHERE kind = 'product_view'") == [("garden",)]


def test_any_batching_of_both_logs_builds_the_same_warehouse(app, bus, shop, telemetry, tmp_path):
    store = str(shop.ctx.store_id)
    now = datetime.now(timezone.utc)
    for n in range(3):
        visitor = f"v-{n}"
        telemetry.append(store, [event(0, now, visitor=visitor, session=visitor, device="desktop"),
                                 event(1, now, visitor=visitor, session=visitor, product=str(shop.products["MUG-1"]))],
                         received_at_us=us(now))
        cart_id, order_id, placed = place_paid_order(bus, shop, {"MUG-1": 1 + n}, visitor_id=visitor)
        if n == 1:
            bus.execute(RefundOrder(order_id=order_id, amount=placed["total"], restock={"MUG-1": 2}), shop.ctx)
    ready_cart(bus, shop, {"BOOK-1": 1})  # abandoned

    def build(name: str, **options) -> dict:
        warehouse = Warehouse(tmp_path / f"{name}.duckdb")
        try:
            feed(warehouse, app, telemetry, **options)
            return snapshot(warehouse)
        finally:
            warehouse.close()

    reference = build("all_at_once")
    piecemeal = build("piecemeal", commerce_batch=1, telemetry_batch=1)
    for table in TABLES:
        assert piecemeal[table] == reference[table], table
    assert len(reference["orders"]) == 3 and len(reference["events"]) > 20
