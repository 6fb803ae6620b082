"""Property tests of the aggregates: invariants hold and replay rebuilds the live state,
for any sequence of commands (including ones the domain rejects)."""

from __future__ import annotations

from uuid import UUID, uuid4

from eventsourcing.application import project_aggregate
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.application import TrafiApplication
from commands.config import EventStoreConfig
from domain.cart import Cart
from domain.errors import DomainError
from domain.money import Rounding
from domain.personal import PersonalData
from domain.pricing.shipping import ShippingRate, ShippingZone, WeightBracket
from domain.stock import StockItem
from domain.store import Store

STORE_ID = UUID(int=1)
ORDERS = [UUID(int=100 + i) for i in range(4)]
_mapper = TrafiApplication(EventStoreConfig(kind="sqlite", sqlite_path=":memory:")).mapper


def replayed(aggregate, events):
    """Rebuild from events that went through the real serialiser (JSON, transcodings, topics)."""
    stored = [_mapper.to_stored_event(e) for e in events]
    return project_aggregate(None, [_mapper.to_domain_event(s) for s in stored])


def state(aggregate) -> dict:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


stock_ops = st.lists(
    st.one_of(
        st.tuples(st.just("receive"), st.integers(-3, 20)),
        st.tuples(st.just("adjust"), st.integers(-3, 30)),
        st.tuples(st.just("reserve"), st.integers(-1, 12), st.sampled_from(ORDERS)),
        st.tuples(st.just("release"), st.sampled_from(ORDERS)),
        st.tuples(st.just("commit"), st.integers(-1, 6), st.sampled_from(ORDERS)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(stock_ops)
def test_available_stock_never_negative_and_replay_rebuilds_state(ops):
    item = StockItem(id=uuid4(), store_id=STORE_ID, sku="SKU-1", product_id=uuid4())
    for op in ops:
        try:
            if op[0] == "receive":
                item.receive(op[1])
            elif op[0] == "adjust":
                item.adjust_to(op[1], "count")
            elif op[0] == "reserve":
                item.reserve(op[2], op[1])
            elif op[0] == "release":
                item.release(op[1])
            else:
                item.commit(op[2], op[1])
        except DomainError:
            pass
        assert item.available >= 0
        assert 0 <= item.reserved <= item.on_hand
        assert item.reserved == sum(item.reservations.values())
    events = item.collect_events()
    assert state(replayed(item, events)) == state(item)


ZONES = [
    ShippingZone(id="near", name="Near", countries=frozenset({"DE", "AT"}), rates=(
        ShippingRate(id="std", name="Std", kind="free_over", amount=490, free_over=5000),
        ShippingRate(id="heavy", name="Heavy", kind="weight", brackets=(WeightBracket(1000, 500), WeightBracket(5000, 1500))),
    )),
    ShippingZone(id="far", name="Far", countries=frozenset({"IT", "HU", "FI"}), rates=(
        ShippingRate(id="flat", name="Flat", kind="flat", amount=990),
    )),
]
VARIANTS = [
    {"sku": "A", "title": "A", "price": 1999, "tax_class": "standard", "weight_grams": 300},
    {"sku": "B", "title": "B", "price": 450, "tax_class": "reduced", "weight_grams": 800},
    {"sku": "C", "title": "C", "price": 1, "tax_class": "super_reduced", "weight_grams": 0},
    {"sku": "D", "title": "D", "price": 125_00, "tax_class": "zero", "weight_grams": 2500},
]
cart_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(VARIANTS), st.integers(-2, 40)),
        st.tuples(st.just("quantity"), st.sampled_from("ABCDE"), st.integers(-1, 50)),
        st.tuples(st.just("remove"), st.sampled_from("ABCDE")),
        st.tuples(st.just("address"), st.sampled_from(["DE", "AT", "IT", "HU", "FI", "FR", "XX"])),
        st.tuples(st.just("method"), st.sampled_from(["std", "heavy", "flat", "none"])),
        st.tuples(st.just("reprice"), st.integers(0, 5000)),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(cart_ops, st.booleans(), st.sampled_from(list(Rounding)))
def test_cart_totals_invariants_and_replay(ops, prices_include_tax, rounding):
    store = Store.open(STORE_ID, slug="s", name="S", currency="EUR", prices_include_tax=prices_include_tax,
                       origin_country="DE", rounding=rounding)
    store.set_shipping_zones(ZONES)
    cart = Cart.start(uuid4(), store_id=STORE_ID, store_currency="EUR", currency="EUR",
                      email=PersonalData(UUID(int=7), "a@example.com"))
    for op in ops:
        try:
            if op[0] == "add":
                cart.add_item(product_id=UUID(int=9), variant=op[1], product_title="P", quantity=op[2])
            elif op[0] == "quantity":
                cart.change_quantity(op[1], op[2])
            elif op[0] == "remove":
                cart.remove_item(op[1])
            elif op[0] == "address":
                cart.set_shipping_address(op[1], PersonalData(UUID(int=7), {"city": "X"}))
            elif op[0] == "method":
                cart.choose_shipping_method(op[1], store.zones)
            else:
                cart.reprice({sku: op[1] for sku in cart.lines})
        except DomainError:
            continue
        try:
            totals = cart.totals(store)
        except DomainError as error:  # e.g. the chosen weight bracket no longer fits: a clear error, not a wrong total
            assert error.code == "shipping.too_heavy"
            continue
        tax_of_lines = sum(l.tax for l in totals.lines)
        assert totals.subtotal == sum(l["unit_price"] * l["quantity"] for l in cart.lines.values())
        assert totals.tax == tax_of_lines + totals.shipping_tax
        assert totals.total == sum(l.net for l in totals.lines) + totals.shipping_net + totals.tax
        if not prices_include_tax:
            assert totals.total == totals.subtotal + totals.shipping + totals.tax
        else:
            assert totals.total == totals.subtotal + totals.shipping
        for amount in (totals.subtotal, totals.shipping, totals.tax, totals.total, *(l.net for l in totals.lines)):
            assert amount >= 0
    events = cart.collect_events()
    assert state(replayed(cart, events)) == state(cart)
