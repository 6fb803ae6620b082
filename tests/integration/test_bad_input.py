"""Bad input: every command rejects invalid values with a stable code, and nothing is written."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from commands.cart import AddToCart, ChangeCartLineQuantity, ChooseShippingMethod, CreateCart, IdentifyBuyer, SetShippingAddress
from commands.catalog import AddVariant, ChangeProductStatus, ChangeVariantPrice, CreateProduct
from commands.checkout import Checkout
from commands.customers import AddCustomerAddress, RegisterCustomer
from commands.orders import FulfilOrder, RefundOrder
from commands.stock import AdjustStock, ReceiveStock
from commands.store import ChangeTaxSettings, SetShippingZones
from domain import ids
from domain.errors import DomainError
from tests.factories import ADDRESS_DE, ready_cart


def cases(shop, cart_id, empty_cart_id, order_id):
    mug = shop.products["MUG-1"]
    customer = ids.customer_id(shop.ctx.store_id, "buyer@example.com")
    return [
        (AddToCart(cart_id=cart_id, product_id=mug, sku="MUG-1", quantity=-1), "cart.invalid_quantity", "quantity"),
        (AddToCart(cart_id=cart_id, product_id=mug, sku="MUG-1", quantity=0), "cart.invalid_quantity", "quantity"),
        (AddToCart(cart_id=cart_id, product_id=mug, sku="MUG-1", quantity=1000), "cart.invalid_quantity", "quantity"),
        (AddToCart(cart_id=cart_id, product_id=mug, sku="NOPE-1", quantity=1), "product.unknown_sku", "sku"),
        (AddToCart(cart_id=cart_id, product_id=uuid4(), sku="MUG-1", quantity=1), "cart.unknown_product", "product_id"),
        (AddToCart(cart_id=uuid4(), product_id=mug, sku="MUG-1", quantity=1), "cart.not_found", None),
        (ChangeCartLineQuantity(cart_id=cart_id, sku="BOOK-1", quantity=1), "cart.unknown_line", "sku"),
        (CreateCart(currency="USD"), "money.currency_mismatch", "currency"),
        (CreateCart(currency="EUR", email="not-an-email"), "customer.invalid_email", "email"),
        (IdentifyBuyer(cart_id=cart_id, email="@nope"), "customer.invalid_email", "email"),
        (SetShippingAddress(cart_id=cart_id, address={**ADDRESS_DE, "country": "XX"}), "address.unknown_country", "address.country"),
        (SetShippingAddress(cart_id=cart_id, address={**ADDRESS_DE, "country": "US"}), "address.unknown_country", "address.country"),
        (SetShippingAddress(cart_id=cart_id, address={"country": "DE"}), "address.missing_field", "address.name"),
        (ChooseShippingMethod(cart_id=cart_id, rate_id="teleport"), "shipping.unknown_method", "shipping_method"),
        (Checkout(cart_id=empty_cart_id), "checkout.empty_cart", "cart_id"),
        (CreateProduct(handle="Bad Handle", title="x"), "product.invalid_handle", "handle"),
        (CreateProduct(handle="fine", title="   "), "product.invalid_title", "title"),
        (AddVariant(product_id=mug, sku="bad sku!", price=100, unit_cost=10), "product.invalid_sku", "sku"),
        (AddVariant(product_id=mug, sku="MUG-2", price=-5, unit_cost=10), "product.invalid_price", "price"),
        (AddVariant(product_id=mug, sku="MUG-2", price=500, unit_cost=-1), "product.invalid_unit_cost", "unit_cost"),
        (AddVariant(product_id=mug, sku="MUG-2", price=500, unit_cost=1, tax_class="luxury"), "tax.unknown_class", "tax_class"),
        (AddVariant(product_id=mug, sku="BOOK-1", price=500, unit_cost=1), "product.duplicate_sku", "sku"),
        (ChangeVariantPrice(product_id=mug, sku="MUG-1", price=-1), "product.invalid_price", "price"),
        (ChangeProductStatus(product_id=mug, status="deleted"), "product.invalid_status", "status"),
        (ReceiveStock(sku="MUG-1", quantity=-3), "stock.invalid_quantity", "quantity"),
        (ReceiveStock(sku="NOPE-1", quantity=3), "stock_item.not_found", None),
        (AdjustStock(sku="MUG-1", on_hand=-1), "stock.invalid_quantity", "on_hand"),
        (RegisterCustomer(email="new@example.com", password="short"), "customer.weak_password", "password"),
        (RegisterCustomer(email="nope", password="long enough password"), "customer.invalid_email", "email"),
        (AddCustomerAddress(customer_id=customer, address_id="a", address={"country": "DE"}), "address.missing_field", "address.name"),
        (AddCustomerAddress(customer_id=uuid4(), address_id="a", address=ADDRESS_DE), "customer.not_found", None),
        (ChangeTaxSettings(prices_include_tax=True, origin_country="ZZ"), "tax.unknown_country", "origin_country"),
        (SetShippingZones(zones=[{"id": "z", "name": "Z", "countries": ["DE"], "rates": [{"id": "r", "name": "R", "kind": "flat", "amount": -1}]}]),
         "shipping.invalid_amount", None),
        (SetShippingZones(zones=[{"nonsense": True}]), "shipping.invalid_zone", "shipping_zones"),
        (RefundOrder(order_id=order_id, amount=100), "order.invalid_transition", None),
        (FulfilOrder(order_id=order_id, lines={"MUG-1": -1}), "order.invalid_fulfilment", "lines"),
    ]


def test_every_invalid_command_is_rejected_with_its_code_and_writes_nothing(app, bus, shop):
    cart_id = ready_cart(bus, shop, {"MUG-1": 1})
    empty_cart = ready_cart(bus, shop, {})
    order_id = UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1})), shop.ctx).data["order_id"])
    for command, code, field in cases(shop, cart_id, empty_cart, order_id):
        before = app.recorder.max_notification_id()
        with pytest.raises(DomainError) as error:
            bus.execute(command, shop.ctx)
        assert error.value.code == code, (command, error.value)
        if field is not None:
            assert error.value.field == field, (command, error.value)
        assert app.recorder.max_notification_id() == before, f"{command!r} wrote events"


def test_checkout_needs_buyer_address_and_method(app, bus, shop):
    cart_id = UUID(bus.execute(CreateCart(currency="EUR"), shop.ctx).data["cart_id"])
    bus.execute(AddToCart(cart_id=cart_id, product_id=shop.products["MUG-1"], sku="MUG-1", quantity=1), shop.ctx)
    steps = [
        (IdentifyBuyer(cart_id=cart_id, email="b@example.com"), "checkout.missing_email"),
        (SetShippingAddress(cart_id=cart_id, address=ADDRESS_DE), "checkout.missing_address"),
        (ChooseShippingMethod(cart_id=cart_id, rate_id="express"), "checkout.missing_shipping_method"),
    ]
    for fix, code in steps:
        before = app.recorder.max_notification_id()
        with pytest.raises(DomainError) as error:
            bus.execute(Checkout(cart_id=cart_id), shop.ctx)
        assert error.value.code == code
        assert app.recorder.max_notification_id() == before
        bus.execute(fix, shop.ctx)
    assert bus.execute(Checkout(cart_id=cart_id), shop.ctx).data["total"] == 1500 + 1290


def test_insufficient_stock_rejects_the_whole_checkout(app, bus, shop):
    cart_id = ready_cart(bus, shop, {"MUG-1": 1, "BOOK-1": 101})
    before = app.recorder.max_notification_id()
    with pytest.raises(DomainError) as error:
        bus.execute(Checkout(cart_id=cart_id), shop.ctx)
    assert error.value.code == "stock.insufficient"
    assert app.recorder.max_notification_id() == before  # not even MUG-1's reservation landed
    assert app.repository.get(ids.stock_item_id(shop.ctx.store_id, "MUG-1")).reserved == 0
