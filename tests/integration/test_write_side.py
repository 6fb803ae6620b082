"""The write side end to end, on SQLite and PostgreSQL (the `app` fixture runs both)."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from commands.cart import AddToCart, CreateCart, RefreshCartPrices
from commands.catalog import ChangeVariantPrice
from commands.checkout import Checkout, token_hash
from commands.customers import AddCustomerAddress, RegisterCustomer
from commands.context import StoreContext
from commands.orders import CancelOrder, FulfilOrder, MarkOrderDelivered, MarkOrderPaid, RefundOrder
from commands.bus import IdempotencyKeyReused
from domain import ids
from domain.customer import Customer
from domain.errors import Conflict, InvalidTransition, InvalidValue, NotFound
from domain.order import Order
from domain.passwords import verify_password
from domain.stock import StockItem
from tests.factories import ADDRESS_DE, ready_cart, seed_small_store


def stock(app, shop, sku) -> StockItem:
    return app.repository.get(ids.stock_item_id(shop.ctx.store_id, sku))


def test_checkout_places_order_with_snapshot_and_reserves_stock(app, bus, shop):
    cart_id = ready_cart(bus, shop, {"MUG-1": 2, "BOOK-1": 1})
    result = bus.execute(Checkout(cart_id=cart_id), shop.ctx)

    order = app.repository.get(UUID(result.data["order_id"]))
    assert order.status == "pending_payment"
    assert order.cart_id == cart_id
    assert [(l["sku"], l["quantity"], l["unit_price"], l["unit_cost"]) for l in order.lines] == [
        ("MUG-1", 2, 1500, 600), ("BOOK-1", 1, 2400, 1400),
    ]
    # Prices include tax: 2×15.00 at 19 % + 24.00 at 7 %, free shipping over 50.00.
    assert order.totals["total"] == 5400
    assert order.totals["tax"] == 479 + 157
    assert order.country == "DE" and order.shipping_method == "standard"
    assert order.email.value == "buyer@example.com"
    assert order.token_hash == token_hash(result.data["order_token"])
    assert stock(app, shop, "MUG-1").reserved == 2
    assert stock(app, shop, "MUG-1").available == 98
    assert app.repository.get(cart_id).order_id == order.id
    # The guest became a customer whose id is derived from the e-mail.
    assert app.repository.get(ids.customer_id(shop.ctx.store_id, "buyer@example.com")).is_guest
    # The position is the notification id of the command's last event.
    assert result.position == app.recorder.max_notification_id()


def test_shipping_is_charged_below_threshold(app, bus, shop):
    result = bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1})), shop.ctx)
    order = app.repository.get(UUID(result.data["order_id"]))
    assert order.totals["shipping"] == 490
    assert order.totals["total"] == 1500 + 490


def test_order_lifecycle_fulfil_deliver_refund(app, bus, shop):
    order_id = UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"TEE-M": 3})), shop.ctx).data["order_id"])
    total = app.repository.get(order_id).total
    bus.execute(MarkOrderPaid(order_id=order_id, amount=total, reference="pi_1"), shop.ctx)
    bus.execute(FulfilOrder(order_id=order_id, lines={"TEE-M": 1}, carrier="DHL", tracking_number="T1"), shop.ctx)
    assert app.repository.get(order_id).status == "partially_fulfilled"
    assert stock(app, shop, "TEE-M").on_hand == 99 and stock(app, shop, "TEE-M").reserved == 2
    bus.execute(FulfilOrder(order_id=order_id, lines={"TEE-M": 2}), shop.ctx)
    bus.execute(MarkOrderDelivered(order_id=order_id), shop.ctx)
    assert app.repository.get(order_id).status == "delivered"
    assert stock(app, shop, "TEE-M").on_hand == 97 and stock(app, shop, "TEE-M").reserved == 0

    bus.execute(RefundOrder(order_id=order_id, amount=1000), shop.ctx)
    assert app.repository.get(order_id).status == "partially_refunded"
    with pytest.raises(InvalidValue) as too_much:
        bus.execute(RefundOrder(order_id=order_id, amount=total), shop.ctx)
    assert too_much.value.code == "order.invalid_refund"
    bus.execute(RefundOrder(order_id=order_id, amount=total - 1000), shop.ctx)
    assert app.repository.get(order_id).status == "refunded"


def test_cancellation_releases_stock_and_fulfilled_orders_cannot_be_cancelled(app, bus, shop):
    order_id = UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 4})), shop.ctx).data["order_id"])
    bus.execute(CancelOrder(order_id=order_id, reason="changed mind"), shop.ctx)
    assert app.repository.get(order_id).status == "cancelled"
    assert stock(app, shop, "MUG-1").reserved == 0 and stock(app, shop, "MUG-1").available == 100

    other = UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1})), shop.ctx).data["order_id"])
    bus.execute(MarkOrderPaid(order_id=other, amount=app.repository.get(other).total, reference="pi"), shop.ctx)
    bus.execute(FulfilOrder(order_id=other, lines={"MUG-1": 1}), shop.ctx)
    with pytest.raises(InvalidTransition) as error:
        bus.execute(CancelOrder(order_id=other), shop.ctx)
    assert error.value.code == "order.invalid_transition"
    assert (error.value.current, error.value.target) == ("fulfilled", "cancelled")


def test_payment_must_match_total_and_pending_orders_cannot_ship(app, bus, shop):
    order_id = UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1})), shop.ctx).data["order_id"])
    with pytest.raises(InvalidValue) as wrong_amount:
        bus.execute(MarkOrderPaid(order_id=order_id, amount=1, reference="pi"), shop.ctx)
    assert wrong_amount.value.code == "order.amount_mismatch"
    with pytest.raises(InvalidTransition) as not_paid:
        bus.execute(FulfilOrder(order_id=order_id, lines={"MUG-1": 1}), shop.ctx)
    assert not_paid.value.code == "order.invalid_transition"


def test_price_change_is_an_explicit_visible_repricing_at_checkout(app, bus, shop):
    cart_id = ready_cart(bus, shop, {"MUG-1": 1})
    bus.execute(ChangeVariantPrice(product_id=shop.products["MUG-1"], sku="MUG-1", price=1700), shop.ctx)
    # The buyer saw 19.90 (15.00 + 4.90 shipping); the total changed, so checkout stops and writes nothing.
    before = app.recorder.max_notification_id()
    with pytest.raises(Conflict) as changed:
        bus.execute(Checkout(cart_id=cart_id, expected_total=1990), shop.ctx)
    assert changed.value.code == "checkout.total_changed"
    assert app.recorder.max_notification_id() == before

    refreshed = bus.execute(RefreshCartPrices(cart_id=cart_id), shop.ctx)
    assert refreshed.data["repriced"] == [{"sku": "MUG-1", "old_price": 1500, "new_price": 1700}]
    history = [type(e).TOPIC for e in app.events.get(cart_id)]
    assert "trafi.cart.line_price_changed.v1" in history
    order_id = UUID(bus.execute(Checkout(cart_id=cart_id, expected_total=2190), shop.ctx).data["order_id"])
    assert app.repository.get(order_id).lines[0]["unit_price"] == 1700


def test_idempotency_key_replays_first_result_and_rejects_other_body(app, bus, shop):
    cart_id = ready_cart(bus, shop, {"MUG-1": 1})
    first = bus.execute(Checkout(cart_id=cart_id), shop.ctx, idempotency_key="checkout-1")
    again = bus.execute(Checkout(cart_id=cart_id), shop.ctx, idempotency_key="checkout-1")
    assert again.replayed and again.data == first.data and again.position == first.position
    assert stock(app, shop, "MUG-1").reserved == 1  # applied once

    with pytest.raises(IdempotencyKeyReused) as reused:
        bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1})), shop.ctx, idempotency_key="checkout-1")
    assert reused.value.code == "idempotency.key_reused"


def test_deterministic_ids_make_creations_idempotent(app, bus, shop):
    cart_id = uuid4()
    bus.execute(CreateCart(cart_id=cart_id, currency="EUR"), shop.ctx)
    with pytest.raises(Conflict) as exists:
        bus.execute(CreateCart(cart_id=cart_id, currency="EUR"), shop.ctx)
    assert exists.value.code == "cart.exists"
    cart_id2 = ready_cart(bus, shop, {"MUG-1": 1})
    bus.execute(Checkout(cart_id=cart_id2), shop.ctx)
    with pytest.raises(Conflict) as twice:
        bus.execute(Checkout(cart_id=cart_id2), shop.ctx)
    assert twice.value.code == "cart.checked_out"


def test_foreign_store_aggregates_behave_as_not_found(app, bus, shop):
    other = seed_small_store(bus)
    cart_id = ready_cart(bus, shop, {"MUG-1": 1})
    order_id = UUID(bus.execute(Checkout(cart_id=cart_id), shop.ctx).data["order_id"])
    before = app.recorder.max_notification_id()
    for command in (
        AddToCart(cart_id=ready_cart(bus, shop, {"MUG-1": 1}), product_id=other.products["MUG-1"], sku="MUG-1", quantity=1),
        MarkOrderPaid(order_id=order_id, amount=1990, reference="x"),
        CancelOrder(order_id=order_id),
    ):
        before = app.recorder.max_notification_id()
        with pytest.raises((NotFound, InvalidValue)) as error:
            bus.execute(command, other.ctx if not isinstance(command, AddToCart) else shop.ctx)
        assert error.value.code in {"order.not_found", "cart.not_found", "cart.unknown_product"}
        assert app.recorder.max_notification_id() == before
    # A context for a store that does not exist sees nothing either.
    ghost = StoreContext(store_id=ids.store_id("ghost"))
    with pytest.raises(NotFound):
        bus.execute(CancelOrder(order_id=order_id), ghost)


def test_customer_accounts_hash_passwords_and_upgrade_guests(app, bus, shop):
    bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1}, email="Returning@Example.com")), shop.ctx)
    customer_id = ids.customer_id(shop.ctx.store_id, "returning@example.com")
    assert app.repository.get(customer_id).is_guest
    result = bus.execute(RegisterCustomer(email="returning@example.com", password="correct horse battery"), shop.ctx)
    assert UUID(result.data["customer_id"]) == customer_id  # same identity as the guest
    customer: Customer = app.repository.get(customer_id)
    assert not customer.is_guest
    assert customer.password_hash.startswith("$argon2id$")
    assert verify_password(customer.password_hash, "correct horse battery")
    assert not verify_password(customer.password_hash, "wrong password!")
    with pytest.raises(Conflict):
        bus.execute(RegisterCustomer(email="returning@example.com", password="another password"), shop.ctx)
    bus.execute(AddCustomerAddress(customer_id=customer_id, address_id="home", address=ADDRESS_DE), shop.ctx)
    address = app.repository.get(customer_id).addresses["home"]
    assert address["country"] == "DE" and address["details"].value["city"] == "Köln"
    # Personal data is stored only through the PersonalData transcoding.
    stored = [s.state for s in app.events.recorder.select_events(customer_id)]
    assert all(b'"_type_":"personal_data"' in s or b"email" not in s for s in stored)


def test_snapshot_loads_equal_full_replay(app, bus, shop):
    from commands.application import _replay
    from commands.stock import ReceiveStock

    for _ in range(230):  # past two snapshot intervals of 100
        bus.execute(ReceiveStock(sku="BOOK-1", quantity=1), shop.ctx)
    stock_id = ids.stock_item_id(shop.ctx.store_id, "BOOK-1")
    rows = app.recorder.select_events_of([stock_id])
    assert rows[0][0].topic == "eventsourcing.domain:Snapshot" and rows[0][1] is None
    assert len(rows) == 1 + 232 - 200  # the snapshot at version 200, then the events after it

    from_snapshot = app.load_many([stock_id])[0][stock_id]
    full = _replay([app.mapper.to_domain_event(s) for s in app.recorder.select_events(stock_id)])
    assert vars(from_snapshot) == vars(full)
    assert (full.version, full.on_hand) == (232, 330)
