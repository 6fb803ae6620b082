"""The query services over the built-in read models, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import threading
import time
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import eventsourcing.domain
import pytest

from commands.cart import AddToCart, ChooseShippingMethod, CreateCart, SetShippingAddress
from commands.catalog import AddVariant, ChangeProductStatus, ChangeVariantPrice, CreateProduct
from commands.checkout import Checkout
from commands.context import StoreContext
from commands.orders import CancelOrder, FulfilOrder, MarkOrderPaid, RefundOrder
from commands.stock import AdjustStock
from commands.store import ChangeTaxSettings
from domain import ids
from domain.errors import DomainError, InvalidValue, NotFound
from projections.read_models.carts import CartView
from projections.read_models.catalogue import StorefrontCatalogue
from projections.read_models.dashboard import DashboardMetrics
from projections.read_models.orders import OrderList
from projections.read_models.stock import StockLevels
from projections.runner import ProjectionRunner
from queries.carts import CartQueries
from queries.catalogue import CatalogueQueries
from queries.consistency import ReadModelBehind, wait_for_position
from queries.customers import CustomerQueries
from queries.dashboard import DashboardQueries
from queries.orders import OrderQueries
from queries.periods import period
from queries.stock import StockQueries
from tests.factories import ADDRESS_DE, ready_cart, seed_small_store

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc


@pytest.fixture
def read_side(app, views):
    """Every built-in read model; call it to catch them all up."""
    runners = [ProjectionRunner(app, views, cls()) for cls in (OrderList, CartView, StockLevels,
                                                               StorefrontCatalogue, DashboardMetrics)]

    def catch_up() -> None:
        for runner in runners:
            runner.catch_up()

    return catch_up


class Clock:
    """Stands in for the event library's clock, so events carry the timestamps a test chooses."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock(datetime(2026, 3, 11, 12, 0, tzinfo=UTC))
    monkeypatch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", fake)
    return fake


def place(bus, shop, lines: dict[str, int], email: str = "buyer@example.com") -> UUID:
    return UUID(bus.execute(Checkout(cart_id=ready_cart(bus, shop, lines, email=email)), shop.ctx).data["order_id"])


def pay(bus, shop, order_id: UUID) -> None:
    order = bus.app.repository.get(order_id)
    bus.execute(MarkOrderPaid(order_id=order_id, amount=order.total, reference="pi"), shop.ctx)


def all_pages(fetch, limit: int) -> list[list]:
    pages, cursor = [], None
    while True:
        page = fetch(limit=limit, cursor=cursor)
        pages.append(list(page.items))
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


# --- orders -------------------------------------------------------------------------------------------


def test_order_pages_cover_every_order_once_newest_first_even_with_equal_timestamps(bus, shop, views, read_side, clock):
    instant = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    placed = {}
    for offset, count in ((timedelta(0), 8), (timedelta(seconds=1), 3), (timedelta(seconds=-1), 2)):
        clock.now = instant + offset
        for _ in range(count):
            placed[place(bus, shop, {"MUG-1": 1})] = clock.now
    read_side()
    expected = sorted(placed, key=lambda o: (placed[o], str(o)), reverse=True)
    orders = OrderQueries(views)

    pages = all_pages(lambda **page: orders.list_orders(shop.ctx, **page), limit=4)
    assert [len(p) for p in pages] == [4, 4, 4, 1]
    assert [o.order_id for p in pages for o in p] == expected
    assert all(o.placed_at == placed[o.order_id] for p in pages for o in p)

    # Keyset, not offset: an order placed while paging shows up on a fresh first page, not as a duplicate.
    first = orders.list_orders(shop.ctx, limit=5)
    clock.now = instant + timedelta(minutes=5)
    newest = place(bus, shop, {"BOOK-1": 1})
    read_side()
    rest = all_pages(lambda **page: orders.list_orders(shop.ctx, **page) if page["cursor"] else first, limit=5)
    assert [o.order_id for p in rest for o in p] == expected
    assert orders.list_orders(shop.ctx, limit=1).items[0].order_id == newest


def test_order_list_filters_by_status_date_range_and_email(bus, shop, views, read_side, clock):
    clock.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    early = place(bus, shop, {"MUG-1": 1}, email="Ann.Smith@Example.com")
    clock.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    middle = place(bus, shop, {"BOOK-1": 1}, email="bob@example.com")
    clock.now = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    late = place(bus, shop, {"TEE-M": 1}, email="ann.smith@example.com")
    pay(bus, shop, early)
    bus.execute(CancelOrder(order_id=middle), shop.ctx)
    read_side()
    orders = OrderQueries(views)

    def listed(**filters) -> list[UUID]:
        return [o.order_id for o in orders.list_orders(shop.ctx, **filters).items]

    assert listed() == [late, middle, early]
    assert listed(status="paid") == [early]
    assert listed(status=["cancelled", "pending_payment"]) == [late, middle]
    assert listed(placed_from=datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) == [late, middle]  # from: inclusive
    assert listed(placed_to=datetime(2026, 3, 2, 9, 0, tzinfo=UTC)) == [early]  # to: exclusive
    # Bounds in any zone: 10:00 in Berlin is 09:00 UTC.
    assert listed(placed_from=datetime(2026, 3, 2, 10, 0, tzinfo=BERLIN),
                  placed_to=datetime(2026, 3, 3, 10, 0, tzinfo=BERLIN)) == [middle]
    assert listed(email="ANN.SMITH@example.COM ") == [late, early]
    assert listed(email="ann.smith@example.com", status="paid") == [early]
    assert listed(email="nobody@example.com") == []
    assert orders.list_orders(shop.ctx, email="bob@example.com").items[0].status == "cancelled"

    for bad, field in [
        (dict(status="shipped"), "status"),
        (dict(status=[]), "status"),
        (dict(placed_from=datetime(2026, 3, 1)), "placed_from"),  # naive: whose midnight?
        (dict(placed_from=datetime(2026, 3, 2, tzinfo=UTC), placed_to=datetime(2026, 3, 1, tzinfo=UTC)), "placed_to"),
    ]:
        with pytest.raises(InvalidValue) as error:
            orders.list_orders(shop.ctx, **bad)
        assert error.value.field == field


def test_bad_page_requests_are_rejected(bus, shop, views, read_side):
    place(bus, shop, {"MUG-1": 1})
    read_side()
    orders = OrderQueries(views)
    forged = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00.000000Z"]').decode()  # one key part, not two
    for cursor in ["not a cursor", "", "%%%", forged, base64.urlsafe_b64encode(b"[1, 2]").decode()]:
        with pytest.raises(InvalidValue) as error:
            orders.list_orders(shop.ctx, cursor=cursor)
        assert (error.value.field, error.value.code) == ("cursor", "query.invalid_cursor")
    for limit in (0, 201, -1, True):
        with pytest.raises(InvalidValue) as error:
            orders.list_orders(shop.ctx, limit=limit)
        assert error.value.field == "limit"
    assert len(orders.list_orders(shop.ctx, limit=200).items) == 1


def test_order_detail_is_the_order_as_placed_and_since_scoped_to_its_store(app, bus, shop, views, read_side):
    order_id = place(bus, shop, {"MUG-1": 2, "BOOK-1": 1}, email="ann@example.com")
    pay(bus, shop, order_id)
    bus.execute(FulfilOrder(order_id=order_id, lines={"MUG-1": 2}), shop.ctx)
    bus.execute(RefundOrder(order_id=order_id, amount=300, reason="dent"), shop.ctx)
    other = seed_small_store(bus)
    foreign = place(bus, other, {"MUG-1": 1})
    read_side()
    orders = OrderQueries(views)

    detail = orders.get_order(shop.ctx, order_id)
    order = app.repository.get(order_id)
    # Inclusive prices: 2 × 15.00 at 19 % and 24.00 at 7 %, free shipping from 50.00 (the order is 54.00).
    assert (detail.subtotal, detail.shipping, detail.total, detail.tax) == (5400, 0, 5400, 479 + 157)
    assert (detail.status, detail.paid_amount, detail.refunded) == ("partially_refunded", 5400, 300)
    assert (detail.email, detail.customer_id, detail.country, detail.item_count) == (
        "ann@example.com", order.customer_id, "DE", 3)
    assert [(l.sku, l.quantity, l.unit_price, l.amount, l.tax, l.fulfilled) for l in detail.lines] == [
        ("MUG-1", 2, 1500, 3000, 479, 2), ("BOOK-1", 1, 2400, 2400, 157, 0)]
    assert detail.paid_at is not None and detail.paid_at >= detail.placed_at

    for missing in (uuid4(), foreign):
        with pytest.raises(NotFound):
            orders.get_order(shop.ctx, missing)
    assert orders.get_order(other.ctx, foreign).order_id == foreign
    assert [o.order_id for o in orders.list_orders(shop.ctx).items] == [order_id]


# --- customers ------------------------------------------------------------------------------------------


def test_customer_order_history_newest_first_by_id_or_email(bus, shop, views, read_side, clock):
    ann = []
    for day in (1, 5, 9):
        clock.now = datetime(2026, 3, day, 8, 0, tzinfo=UTC)
        ann.append(place(bus, shop, {"MUG-1": 1}, email="ann@example.com"))
        place(bus, shop, {"BOOK-1": 1}, email="bob@example.com")
    read_side()
    customers = CustomerQueries(views)
    ann_id = ids.customer_id(shop.ctx.store_id, "ann@example.com")

    pages = all_pages(lambda **page: customers.order_history(shop.ctx, customer_id=ann_id, **page), limit=2)
    assert [[o.order_id for o in p] for p in pages] == [[ann[2], ann[1]], [ann[0]]]
    by_email = customers.order_history(shop.ctx, email="Ann@Example.com").items
    assert [o.order_id for o in by_email] == ann[::-1]
    assert {o.customer_id for o in by_email} == {ann_id}
    assert customers.order_history(shop.ctx, customer_id=uuid4()).items == ()
    with pytest.raises(InvalidValue):
        customers.order_history(shop.ctx)


# --- stock ------------------------------------------------------------------------------------------------


def test_stock_levels_flag_low_stock_as_checkouts_reserve_it(app, bus, views, read_side):
    shop = seed_small_store(bus, stock=8)
    read_side()
    stock = StockQueries(views)
    assert stock.low_stock(shop.ctx) == ()

    mugs = place(bus, shop, {"MUG-1": 3})  # MUG-1: 8 on hand, 3 reserved → 5 available: low at 5
    place(bus, shop, {"BOOK-1": 1})
    tees = place(bus, shop, {"TEE-M": 6})
    bus.execute(CancelOrder(order_id=tees), shop.ctx)  # released again
    pay(bus, shop, mugs)
    bus.execute(FulfilOrder(order_id=mugs, lines={"MUG-1": 2}), shop.ctx)  # 6 on hand, 1 reserved
    bus.execute(AdjustStock(sku="BOOK-1", on_hand=3), shop.ctx)  # 3 on hand, 1 reserved
    read_side()

    levels = {level.sku: level for level in stock.levels(shop.ctx).items}
    assert {sku: (l.on_hand, l.reserved, l.available, l.low_stock) for sku, l in levels.items()} == {
        "BOOK-1": (3, 1, 2, True), "MUG-1": (6, 1, 5, True), "TEE-M": (8, 0, 8, False)}
    for sku, level in levels.items():
        item = app.repository.get(ids.stock_item_id(shop.ctx.store_id, sku))
        assert (level.on_hand, level.reserved, level.available) == (item.on_hand, item.reserved, item.available)
    assert [l.sku for l in stock.low_stock(shop.ctx)] == ["BOOK-1", "MUG-1"]  # emptiest first
    assert [l.sku for l in stock.low_stock(shop.ctx, threshold=4)] == ["BOOK-1"]
    assert [l.sku for l in stock.low_stock(shop.ctx, threshold=8)] == ["BOOK-1", "MUG-1", "TEE-M"]
    assert stock.level(shop.ctx, "TEE-M", threshold=10).low_stock is True
    assert [[l.sku for l in p] for p in all_pages(lambda **page: stock.levels(shop.ctx, **page), limit=2)] == [
        ["BOOK-1", "MUG-1"], ["TEE-M"]]

    other = seed_small_store(bus)
    read_side()
    with pytest.raises(NotFound):
        stock.level(shop.ctx, "NOPE-1")
    assert stock.level(other.ctx, "MUG-1").available == 100  # same SKU, another store: its own item
    with pytest.raises(InvalidValue) as error:
        stock.low_stock(shop.ctx, threshold=-1)
    assert error.value.field == "threshold"


# --- catalogue -----------------------------------------------------------------------------------------------


def test_storefront_catalogue_shows_active_products_with_sellable_stock(bus, shop, views, read_side):
    ctx = shop.ctx
    poster = UUID(bus.execute(CreateProduct(handle="poster", title="Poster"), ctx).data["product_id"])
    bus.execute(AddVariant(product_id=poster, sku="POSTER-A2", price=900, unit_cost=100), ctx)  # stays a draft
    sticker = UUID(bus.execute(CreateProduct(handle="sticker", title="Sticker", categories=["fun"]), ctx)
                   .data["product_id"])
    bus.execute(AddVariant(product_id=sticker, sku="STK-S", title="Small", price=200, unit_cost=20), ctx)
    bus.execute(AddVariant(product_id=sticker, sku="STK-L", title="Large", price=350, unit_cost=30), ctx)
    bus.execute(ChangeProductStatus(product_id=sticker, status="active"), ctx)  # active, never stocked
    bus.execute(ChangeProductStatus(product_id=shop.products["TEE-M"], status="archived"), ctx)
    bus.execute(ChangeVariantPrice(product_id=shop.products["BOOK-1"], sku="BOOK-1", price=2500), ctx)
    place(bus, shop, {"MUG-1": 4})
    seed_small_store(bus)  # another store's products never show here
    read_side()
    catalogue = CatalogueQueries(views)

    products = catalogue.products(ctx).items
    assert [p.handle for p in products] == ["book", "mug", "sticker"]
    book, mug, sticker_view = products
    assert (book.price_from, book.variants[0].price, book.currency, book.prices_include_tax) == (2500, 2500, "EUR", True)
    assert (mug.variants[0].available, mug.in_stock) == (96, True)
    assert [(v.sku, v.title, v.price, v.available, v.in_stock) for v in sticker_view.variants] == [
        ("STK-S", "Small", 200, 0, False), ("STK-L", "Large", 350, 0, False)]
    assert (sticker_view.in_stock, sticker_view.price_from, sticker_view.categories) == (False, 200, ("fun",))
    assert [p.handle for p in catalogue.products(ctx, in_stock_only=True).items] == ["book", "mug"]
    pages = all_pages(lambda **page: catalogue.products(ctx, **page), limit=2)
    assert [[p.handle for p in page] for page in pages] == [["book", "mug"], ["sticker"]]
    assert "unit_cost" not in mug.variants[0].model_dump()

    assert catalogue.product(ctx, "mug") == mug
    for hidden in ("poster", "tee", "nothing"):
        with pytest.raises(NotFound):
            catalogue.product(ctx, hidden)


# --- carts ---------------------------------------------------------------------------------------------------


def test_cart_view_prices_like_checkout_and_estimates_shipping(app, bus, shop, views, read_side):
    ctx = shop.ctx
    carts = CartQueries(views)
    cart_id = UUID(bus.execute(CreateCart(currency="EUR", email="ann@example.com"), ctx).data["cart_id"])
    bus.execute(AddToCart(cart_id=cart_id, product_id=shop.products["MUG-1"], sku="MUG-1", quantity=2), ctx)
    bus.execute(AddToCart(cart_id=cart_id, product_id=shop.products["BOOK-1"], sku="BOOK-1", quantity=1), ctx)
    read_side()

    def aggregate_totals():
        return app.repository.get(cart_id).totals(app.repository.get(ctx.store_id))

    # No address yet: taxed in the origin country (DE), no shipping, no estimate.
    view = carts.get_cart(ctx, cart_id)
    assert [(l.sku, l.quantity, l.unit_price, l.amount, l.tax) for l in view.lines] == [
        ("MUG-1", 2, 1500, 3000, 479), ("BOOK-1", 1, 2400, 2400, 157)]
    assert (view.totals.subtotal, view.totals.shipping, view.totals.tax, view.totals.total) == (5400, 0, 636, 5400)
    assert (view.status, view.country, view.shipping_estimate, view.shipping_options) == ("open", None, None, ())
    assert view.totals.total == aggregate_totals().total

    # Italy: one weight-priced method (1,200 g ≤ 2 kg), an estimate until chosen; Italian VAT (22 %, 10 % books).
    bus.execute(SetShippingAddress(cart_id=cart_id, address={**ADDRESS_DE, "country": "IT"}), ctx)
    read_side()
    view = carts.get_cart(ctx, cart_id)
    assert view.shipping_estimate.model_dump() == {"rate_id": "parcel", "name": "Parcel by weight", "amount": 990,
                                                   "chosen": False}
    assert (view.totals.shipping, view.totals.total, view.totals.weight_grams) == (990, 6390, 1200)
    assert view.totals.tax == 541 + 218 + 179  # mugs 3000 at 22 %, book 2400 at 10 %, shipping 990 at 22 %

    # Germany: standard is free from 50.00, so it is the cheapest; express once chosen.
    bus.execute(SetShippingAddress(cart_id=cart_id, address=ADDRESS_DE), ctx)
    read_side()
    view = carts.get_cart(ctx, cart_id)
    assert [(o.rate_id, o.amount) for o in view.shipping_options] == [("standard", 0), ("express", 1290)]
    assert (view.shipping_estimate.rate_id, view.shipping_estimate.chosen, view.totals.total) == ("standard", False, 5400)
    bus.execute(ChooseShippingMethod(cart_id=cart_id, rate_id="express"), ctx)
    bus.execute(ChangeTaxSettings(prices_include_tax=False, origin_country="DE"), ctx)  # read at query time
    read_side()
    view = carts.get_cart(ctx, cart_id)
    expected = aggregate_totals()
    assert (view.shipping_method, view.shipping_estimate.rate_id, view.shipping_estimate.chosen) == (
        "express", "express", True)
    assert (view.totals.subtotal, view.totals.shipping, view.totals.tax, view.totals.total) == (
        expected.subtotal, expected.shipping, expected.tax, expected.total) == (5400, 1290, 570 + 168 + 245, 7673)
    assert view.totals.prices_include_tax is False

    result = bus.execute(Checkout(cart_id=cart_id), ctx)
    read_side()
    view = carts.get_cart(ctx, cart_id)
    assert (view.status, view.order_id) == ("checked_out", UUID(result.data["order_id"]))
    assert result.data["total"] == view.totals.total
    with pytest.raises(NotFound):
        carts.get_cart(seed_small_store(bus).ctx, cart_id)
    with pytest.raises(NotFound):
        carts.get_cart(ctx, uuid4())


# --- dashboard -------------------------------------------------------------------------------------------------

NOW = datetime(2026, 3, 11, 15, 0, tzinfo=BERLIN)  # a Wednesday; 14:00 UTC


def berlin(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
def trading_history(bus, shop, read_side, clock):
    """Orders at chosen moments (Berlin time). Totals: prices include VAT, shipping 4.90 under 50.00.

    name  placed           buyer  lines           total  fate
    O1    Feb  5 10:00     A      BOOK×1          2890   paid
    O2    Mar  2 09:00     B      TEE×1           3390   paid
    O3    Mar 10 11:00     A      BOOK×2          5290   paid
    O8    Mar 10 16:00     E      MUG×1           1990   paid
    O4    Mar 11 00:30     A      MUG×2           3490   paid, 5.00 refunded  (23:30 UTC the day before)
    O5    Mar 11 09:00     C      BOOK×1          2890   paid
    O6    Mar 11 10:00     F      MUG×1           1990   never paid
    O7    Mar 11 11:00     D      TEE×1           3390   paid, then cancelled
    O9    Mar 11 12:00     E      MUG×1           1990   paid, refunded in full
    O10   Mar 11 13:00     B      TEE×1 + MUG×1   4890   paid
    O11   Mar 11 16:00     G      BOOK×1          2890   paid (after `now`)
    """
    plan = [
        ("O1", berlin(2, 5, 10), "a", {"BOOK-1": 1}), ("O2", berlin(3, 2, 9), "b", {"TEE-M": 1}),
        ("O3", berlin(3, 10, 11), "a", {"BOOK-1": 2}), ("O8", berlin(3, 10, 16), "e", {"MUG-1": 1}),
        ("O4", berlin(3, 11, 0, 30), "a", {"MUG-1": 2}), ("O5", berlin(3, 11, 9), "c", {"BOOK-1": 1}),
        ("O6", berlin(3, 11, 10), "f", {"MUG-1": 1}), ("O7", berlin(3, 11, 11), "d", {"TEE-M": 1}),
        ("O9", berlin(3, 11, 12), "e", {"MUG-1": 1}), ("O10", berlin(3, 11, 13), "b", {"TEE-M": 1, "MUG-1": 1}),
        ("O11", berlin(3, 11, 16), "g", {"BOOK-1": 1}),
    ]
    orders = {}
    for name, moment, buyer, lines in plan:
        clock.now = moment
        orders[name] = place(bus, shop, lines, email=f"{buyer}@example.com")
        if name != "O6":
            pay(bus, shop, orders[name])
    assert {n: bus.app.repository.get(o).total for n, o in orders.items()} == {
        "O1": 2890, "O2": 3390, "O3": 5290, "O8": 1990, "O4": 3490, "O5": 2890, "O6": 1990, "O7": 3390,
        "O9": 1990, "O10": 4890, "O11": 2890}
    bus.execute(RefundOrder(order_id=orders["O4"], amount=500), shop.ctx)
    bus.execute(CancelOrder(order_id=orders["O7"]), shop.ctx)
    bus.execute(RefundOrder(order_id=orders["O9"], amount=1990), shop.ctx)
    read_side()
    return orders


def changes(metrics, field: str) -> tuple[int, int]:
    change = getattr(metrics, field)
    assert change.change == change.current - change.previous
    return change.current, change.previous


def test_dashboard_metrics_per_period_against_hand_computed_values(shop, views, trading_history):
    dash = DashboardQueries(views).metrics(shop.ctx, now=NOW, tz="Europe/Berlin", top_products=3)
    assert (dash.currency, dash.tz, dash.compare) == ("EUR", "Europe/Berlin", "same_point")

    # Today so far (O4, O5, O10) vs yesterday up to 15:00 (O3; O8 came at 16:00).
    today = dash.today
    assert (today.start, today.previous_start, today.previous_end) == (
        berlin(3, 11, 0), berlin(3, 10, 0), berlin(3, 10, 15) + timedelta(microseconds=1))
    assert changes(today, "revenue") == (2990 + 2890 + 4890, 5290)
    assert today.revenue.change_percent == 103.6  # (10770 − 5290) / 5290
    assert changes(today, "orders") == (3, 1)
    assert changes(today, "average_order_value") == (3590, 5290)
    assert changes(today, "new_customers") == (1, 0)  # C; A and B bought before
    assert changes(today, "returning_customers") == (2, 1)
    assert [(p.title, p.units, p.revenue, p.previous_units, p.previous_revenue) for p in today.top_products] == [
        ("Mug", 3, 4500, 0, 0), ("Tee", 1, 2900, 0, 0), ("Book", 1, 2400, 2, 4800)]

    # This ISO week from Monday 9 March (O3, O8, O4, O5, O10) vs last week up to Wednesday 15:00 (O2).
    week = dash.this_week
    assert (week.start, week.previous_start) == (berlin(3, 9, 0), berlin(3, 2, 0))
    assert changes(week, "revenue") == (5290 + 1990 + 2990 + 2890 + 4890, 3390)
    assert changes(week, "orders") == (5, 1)
    assert changes(week, "average_order_value") == (3610, 3390)
    assert changes(week, "new_customers") == (2, 1)  # E and C; last week B
    assert changes(week, "returning_customers") == (2, 0)  # A and B

    # This month (O2 and the week's five) vs February up to the 11th, 15:00 (O1).
    month = dash.this_month
    assert changes(month, "revenue") == (3390 + 18050, 2890)
    assert changes(month, "orders") == (6, 1)
    assert changes(month, "average_order_value") == (3573, 2890)  # 21440 / 6 = 3573.33
    assert changes(month, "new_customers") == (3, 1)  # B, E, C; in February A
    assert changes(month, "returning_customers") == (1, 0)  # A
    assert [(p.title, p.units, p.revenue, p.previous_revenue) for p in month.top_products] == [
        ("Book", 3, 7200, 2400), ("Mug", 4, 6000, 0), ("Tee", 2, 5800, 0)]


def test_dashboard_full_previous_periods_and_other_time_zones(shop, views, trading_history):
    dashboards = DashboardQueries(views)
    full = dashboards.metrics(shop.ctx, now=NOW, tz="Europe/Berlin", compare="full", top_products=1)
    assert changes(full.today, "revenue") == (10770, 5290 + 1990)  # all of yesterday: O3 and O8
    assert changes(full.today, "new_customers") == (1, 1)  # yesterday E was new
    assert changes(full.this_month, "revenue") == (21440, 2890)
    assert [p.title for p in full.today.top_products] == ["Mug"]

    # In UTC the day starts an hour later: O4 (23:30 UTC on the 10th) moves to yesterday.
    utc = dashboards.metrics(shop.ctx, now=NOW, tz="UTC")
    assert changes(utc.today, "revenue") == (2890 + 4890, 5290)
    assert changes(utc.today, "orders") == (2, 1)

    before_anything = dashboards.metrics(shop.ctx, now=berlin(1, 20, 12), tz="Europe/Berlin")
    assert changes(before_anything.this_month, "revenue") == (0, 0)
    assert before_anything.this_month.revenue.change_percent is None
    assert before_anything.this_month.average_order_value.current == 0
    assert before_anything.today.top_products == ()

    for bad, field in [(dict(now=datetime(2026, 3, 11)), "now"), (dict(tz="Mars/Olympus"), "tz"),
                       (dict(compare="yesterday"), "compare"), (dict(top_products=0), "top_products")]:
        with pytest.raises(InvalidValue) as error:
            dashboards.metrics(shop.ctx, **bad)
        assert error.value.field == field
    with pytest.raises(NotFound):
        dashboards.metrics(StoreContext(store_id=uuid4()), now=NOW)


def test_periods_follow_the_merchants_calendar_across_dst():
    """Pure: Sunday 29 March 2026 has 23 hours in Berlin (clocks go forward at 02:00)."""
    now = datetime(2026, 3, 29, 12, 0, tzinfo=BERLIN)
    today = period("today", now, BERLIN)
    assert today.current.start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # midnight, still UTC+1
    assert today.current.end == datetime(2026, 3, 29, 10, 0, 0, 1, tzinfo=UTC)  # noon, already UTC+2
    assert today.previous.end == datetime(2026, 3, 28, 11, 0, 0, 1, tzinfo=UTC)  # noon the day before
    week = period("this_week", now, BERLIN)
    assert week.current.start == datetime(2026, 3, 22, 23, 0, tzinfo=UTC)  # Monday the 23rd
    assert week.previous.start == datetime(2026, 3, 15, 23, 0, tzinfo=UTC)
    month = period("this_month", now, BERLIN)
    # 28½ days into March is past the end of February: the comparison is all of February.
    assert (month.previous.start, month.previous.end) == (
        datetime(2026, 1, 31, 23, 0, tzinfo=UTC), datetime(2026, 2, 28, 23, 0, tzinfo=UTC))
    january = period("this_month", datetime(2026, 1, 10, 8, 0, tzinfo=UTC), ZoneInfo("UTC"))
    assert january.previous.start == datetime(2025, 12, 1, tzinfo=UTC)


# --- read-your-writes --------------------------------------------------------------------------------------------


def test_a_query_waits_for_its_read_model_to_reach_a_commands_position(app, bus, shop, views):
    runner = ProjectionRunner(app, views, OrderList())
    runner.catch_up()
    orders = OrderQueries(views)

    def catch_up_later(delay_s: float) -> threading.Thread:
        worker = threading.Thread(target=lambda: (time.sleep(delay_s), runner.catch_up()))
        worker.start()
        return worker

    result = bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"MUG-1": 1})), shop.ctx)
    assert views.position("order_list") < result.position
    worker = catch_up_later(0.2)
    assert wait_for_position(views, "order_list", result.position, timeout_s=10) >= result.position
    worker.join()

    second = bus.execute(Checkout(cart_id=ready_cart(bus, shop, {"BOOK-1": 1})), shop.ctx)
    assert UUID(second.data["order_id"]) not in {o.order_id for o in orders.list_orders(shop.ctx).items}
    worker = catch_up_later(0.2)
    page = orders.list_orders(shop.ctx, min_position=second.position, timeout_s=10)
    worker.join()
    assert page.items[0].order_id == UUID(second.data["order_id"])


def test_a_query_gives_up_with_read_model_behind_after_its_timeout(bus, shop, views, read_side):
    read_side()
    cart_id = UUID(bus.execute(CreateCart(currency="EUR"), shop.ctx).data["cart_id"])
    position = bus.execute(
        AddToCart(cart_id=cart_id, product_id=shop.products["MUG-1"], sku="MUG-1", quantity=1), shop.ctx
    ).position

    started = time.monotonic()
    with pytest.raises(ReadModelBehind) as behind:
        wait_for_position(views, "cart_view", position, timeout_s=0.2)
    assert time.monotonic() - started >= 0.2
    error = behind.value
    assert isinstance(error, DomainError)
    assert (error.code, error.field, error.position) == ("query.read_model_behind", "position", position)
    assert error.reached == views.position("cart_view") < position
    with pytest.raises(ReadModelBehind):
        CartQueries(views).get_cart(shop.ctx, cart_id, min_position=position, timeout_s=0.05)

    read_side()
    assert CartQueries(views).get_cart(shop.ctx, cart_id, min_position=position, timeout_s=0).lines[0].sku == "MUG-1"
    with pytest.raises(InvalidValue):
        wait_for_position(views, "cart_view", position, timeout_s=-1)
