"""The built-in read models on SQLite and PostgreSQL: rows equal the write side's state, and a
clean build from position 0 equals the live read model, row for row."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from uuid import UUID

import pytest

from commands.cart import AddToCart, ChangeCartLineQuantity, RefreshCartPrices, RemoveCartLine, SetShippingAddress
from commands.catalog import AddVariant, ChangeProductDetails, ChangeProductStatus, ChangeVariantPrice, CreateProduct
from commands.checkout import Checkout
from commands.config import EventStoreConfig
from commands.orders import CancelOrder, FulfilOrder, MarkOrderDelivered, MarkOrderPaid, RefundOrder
from commands.stock import AdjustStock, ReceiveStock
from commands.store import ChangeTaxSettings
from domain import ids
from projections.read_models.carts import CartView
from projections.read_models.catalogue import StorefrontCatalogue
from projections.read_models.dashboard import DashboardMetrics
from projections.read_models.orders import OrderList
from projections.read_models.stock import StockLevels
from projections.rebuild import rebuild
from projections.registry import BUILT_IN, all_projections
from projections.runner import ProjectionRunner
from projections.testing import clean_build, table_rows
from projections.kafka import bookkeeping as kafka_bookkeeping
from projections.views import POSITIONS_TABLE, ViewStore
from tests.factories import ADDRESS_DE, ready_cart


READ_MODELS = (OrderList, CartView, StockLevels, StorefrontCatalogue, DashboardMetrics)


@dataclass
class Busy:
    """A store that has been through every kind of event the built-in read models follow."""

    orders: dict[str, UUID] = field(default_factory=dict)
    carts: dict[str, UUID] = field(default_factory=dict)


def checkout(bus, shop, lines: dict[str, int], email: str = "buyer@example.com") -> UUID:
    return UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, lines, email=email)), shop.ctx).data["order_id"])


def busy_store(bus, shop, step=lambda: None) -> Busy:
    """Drive the shop through its life; `step()` runs between stages (live catch-ups)."""
    ctx, busy = shop.ctx, Busy()
    busy.orders["delivered"] = checkout(bus, shop, {"MUG-1": 2, "TEE-M": 1}, "ann@example.com")
    busy.orders["cancelled"] = checkout(bus, shop, {"BOOK-1": 3}, "bob@example.com")
    step()
    busy.orders["refunded"] = checkout(bus, shop, {"TEE-M": 2}, "ann@example.com")
    busy.orders["pending"] = checkout(bus, shop, {"MUG-1": 1, "BOOK-1": 1}, "cid@example.com")
    for name in ("delivered", "refunded"):
        order = bus.app.repository.get(busy.orders[name])
        bus.execute(MarkOrderPaid(order_id=order.id, amount=order.total, reference=f"pi-{name}"), ctx)
    bus.execute(FulfilOrder(order_id=busy.orders["delivered"], lines={"MUG-1": 1}), ctx)
    step()
    bus.execute(FulfilOrder(order_id=busy.orders["delivered"], lines={"MUG-1": 1, "TEE-M": 1}), ctx)
    bus.execute(MarkOrderDelivered(order_id=busy.orders["delivered"]), ctx)
    bus.execute(CancelOrder(order_id=busy.orders["cancelled"], reason="changed mind"), ctx)
    bus.execute(RefundOrder(order_id=busy.orders["refunded"], amount=700, reason="scratched"), ctx)
    step()
    # An open cart whose lines change, whose price moves, and whose country moves zones.
    cart = ready_cart(bus, shop, {"MUG-1": 1, "BOOK-1": 2, "TEE-M": 1})
    busy.carts["open"] = cart
    bus.execute(ChangeCartLineQuantity(cart_id=cart, sku="BOOK-1", quantity=4), ctx)
    bus.execute(RemoveCartLine(cart_id=cart, sku="MUG-1"), ctx)
    bus.execute(AddToCart(cart_id=cart, product_id=shop.products["MUG-1"], sku="MUG-1", quantity=2), ctx)
    bus.execute(ChangeVariantPrice(product_id=shop.products["BOOK-1"], sku="BOOK-1", price=2600), ctx)
    bus.execute(RefreshCartPrices(cart_id=cart), ctx)
    bus.execute(SetShippingAddress(cart_id=cart, address={**ADDRESS_DE, "country": "IT"}), ctx)
    step()
    # Catalogue changes: details, a draft product with a variant, stock counted and received.
    bus.execute(ChangeProductDetails(product_id=shop.products["MUG-1"], title="Mug XL", categories=["kitchen"]), ctx)
    draft = UUID(bus.execute(CreateProduct(handle="poster", title="Poster"), ctx).data["product_id"])
    bus.execute(AddVariant(product_id=draft, sku="POSTER-A2", price=900, unit_cost=200, weight_grams=100), ctx)
    bus.execute(AdjustStock(sku="TEE-M", on_hand=40, reason="stocktake"), ctx)
    bus.execute(ReceiveStock(sku="POSTER-A2", quantity=12), ctx)
    bus.execute(ChangeProductStatus(product_id=shop.products["TEE-M"], status="archived"), ctx)
    bus.execute(ChangeTaxSettings(prices_include_tax=False, origin_country="AT"), ctx)
    step()
    return busy


BOOKKEEPING = (POSITIONS_TABLE, *kafka_bookkeeping.TABLES)


def test_every_built_in_read_model_is_registered_and_owns_what_it_creates(tmp_path):
    """The rebuild contract: `tables` lists every table, and index names start with their table's name."""
    assert set(READ_MODELS) <= set(BUILT_IN)
    registered = all_projections({})
    assert all(type(registered[cls.name]) is cls for cls in READ_MODELS)
    for cls in READ_MODELS:
        projection, path = cls(), tmp_path / f"{cls.name}.sqlite"
        store = ViewStore(EventStoreConfig(kind="sqlite", sqlite_path=str(path)))
        with store.transaction() as tx:
            projection.setup(tx)
            projection.setup(tx)  # idempotent
        store.close()
        with sqlite3.connect(str(path).replace(".sqlite", "-views.sqlite")) as db:
            objects = db.execute(  # less the view store's own bookkeeping
                "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                f"AND tbl_name NOT IN ({', '.join('?' * len(BOOKKEEPING))})", BOOKKEEPING,
            ).fetchall()
        assert {name for kind, name, _ in objects if kind == "table"} == set(projection.tables), cls.name
        for kind, name, table in objects:
            if kind == "index":
                assert name.startswith(f"{table}_"), (cls.name, name)
        # No table name may pass for an index of another (rebuilds rename by prefix).
        for table in projection.tables:
            assert not any(other.startswith(f"{table}_") for other in projection.tables), (cls.name, table)


def test_rows_equal_the_write_side_state(app, bus, shop, views):
    busy = busy_store(bus, shop)
    runners = [ProjectionRunner(app, views, cls(), batch_size=7) for cls in READ_MODELS]
    for runner in runners:
        runner.catch_up()
    repo = app.repository
    with views.transaction() as tx:
        # Orders: header and per-line fulfilment as the aggregate has them.
        for order_id in busy.orders.values():
            order = repo.get(order_id)
            row = tx.execute(
                "SELECT status, total, paid_amount, refunded, email FROM rm_orders WHERE order_id = %s", (str(order_id),)
            ).fetchone()
            assert row == (order.status, order.total, order.paid_amount, order.refunded_amount, order.email.value)
            lines = tx.execute(
                "SELECT sku, quantity, fulfilled FROM rm_order_lines WHERE order_id = %s ORDER BY line_no",
                (str(order_id),),
            ).fetchall()
            assert lines == [(l["sku"], l["quantity"], order.fulfilled.get(l["sku"], 0)) for l in order.lines]
            dash = tx.execute(
                "SELECT status, refunded, paid FROM rm_dashboard_orders WHERE order_id = %s", (str(order_id),)
            ).fetchone()
            assert dash == (order.status, order.refunded_amount, int(order.paid_amount > 0))
        # Stock: both the stock levels and the catalogue's own copy.
        for sku in ("MUG-1", "BOOK-1", "TEE-M", "POSTER-A2"):
            item = repo.get(ids.stock_item_id(shop.ctx.store_id, sku))
            assert tx.execute(
                "SELECT on_hand, reserved, available FROM rm_stock_levels WHERE stock_item_id = %s", (str(item.id),)
            ).fetchone() == (item.on_hand, item.reserved, item.available)
            assert tx.execute(
                "SELECT on_hand, reserved FROM rm_catalogue_stock WHERE stock_item_id = %s", (str(item.id),)
            ).fetchone() == (item.on_hand, item.reserved)
        # The open cart: lines in the order they were (re-)added, at their current prices.
        cart = repo.get(busy.carts["open"])
        assert tx.execute(
            "SELECT sku, quantity, unit_price FROM rm_cart_lines WHERE cart_id = %s ORDER BY line_no", (str(cart.id),)
        ).fetchall() == [(sku, l["quantity"], l["unit_price"]) for sku, l in cart.lines.items()]
        assert [sku for sku in cart.lines] == ["BOOK-1", "TEE-M", "MUG-1"]
        assert tx.execute(
            "SELECT status, country, shipping_method FROM rm_carts WHERE cart_id = %s", (str(cart.id),)
        ).fetchone() == ("open", "IT", None)  # a new zone drops the chosen method, as in the aggregate
        store = repo.get(shop.ctx.store_id)
        assert tx.execute(
            "SELECT prices_include_tax, origin_country FROM rm_cart_stores WHERE store_id = %s", (str(store.id),)
        ).fetchone() == (0, "AT")
        # Catalogue: statuses and prices as the products have them.
        for product_id in [*shop.products.values(), ids.product_id(shop.ctx.store_id, "poster")]:
            product = repo.get(product_id)
            assert tx.execute(
                "SELECT title, status FROM rm_catalogue_products WHERE product_id = %s", (str(product_id),)
            ).fetchone() == (product.title, product.status)
            assert tx.execute(
                "SELECT sku, price FROM rm_catalogue_variants WHERE product_id = %s ORDER BY line_no",
                (str(product_id),),
            ).fetchall() == [(sku, v["price"]) for sku, v in product.variants.items()]


@pytest.mark.parametrize("projection_class", READ_MODELS, ids=lambda cls: cls.name)
def test_clean_build_equals_live(app, bus, shop, views, tmp_path, projection_class):
    """Live: caught up in small batches between commands. Clean: built from 0 into a fresh SQLite view store."""
    live = ProjectionRunner(app, views, projection_class(), batch_size=3)
    busy_store(bus, shop, step=live.catch_up)
    live.catch_up()
    live_rows = table_rows(views, projection_class())
    assert all(live_rows.values()), "the scenario must put rows in every table"
    assert clean_build(app, projection_class(), tmp_path) == live_rows
    # The same through a blue/green rebuild in place: proves `tables` and the index names let it swap.
    rebuild(app, views, projection_class())
    assert table_rows(views, projection_class()) == live_rows
