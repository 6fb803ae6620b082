"""Property tests of an order's money: refunds never exceed what was captured, and what payment
providers report lands in the same final state whatever the order and number of deliveries."""

from __future__ import annotations

import itertools
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.order import Order
from tests.unit.test_domain_properties import replayed, state

TOTAL = 10_000
LINES = [{"sku": "MUG-1", "product_id": str(UUID(int=7)), "title": "Mug", "quantity": 4, "unit_price": 2500,
          "tax_class": "standard", "weight_grams": 300, "unit_cost": 900}]
TOTALS = {"subtotal": TOTAL, "shipping": 0, "tax": 0, "total": TOTAL,
          "lines": [{"sku": "MUG-1", "quantity": 4, "unit_price": 2500, "amount": TOTAL, "tax": 0, "gross": TOTAL}]}


def new_order() -> Order:
    return Order(id=uuid4(), store_id=UUID(int=1), cart_id=uuid4(), customer_id=None, email=None, currency="EUR",
                 lines=LINES, totals=TOTALS, country="DE", shipping_address=None, shipping_method="standard",
                 token_hash="x")


def paid_order() -> Order:
    order = new_order()
    order.start_payment(attempt=1, provider="stripe", intent_id="pi_1", status="requires_payment_method", at=1)
    order.record_payment_report(intent_id="pi_1", status="succeeded", at=2, amount_received=TOTAL)
    return order


REFUND_IDS = [f"r{i}" for i in range(5)]
refund_ops = st.lists(
    st.one_of(
        st.tuples(st.just("request"), st.sampled_from(REFUND_IDS), st.integers(-5, TOTAL + 5),
                  st.integers(0, 4)),
        st.tuples(st.just("complete"), st.sampled_from(REFUND_IDS)),
        st.tuples(st.just("fail"), st.sampled_from(REFUND_IDS)),
        st.tuples(st.just("provider_total"), st.integers(0, TOTAL + 500)),  # charge.refunded without a list
        st.tuples(st.just("provider_item"), st.sampled_from(["re_a", "re_b", "re_c"]), st.integers(1, TOTAL),
                  st.sampled_from([None, *REFUND_IDS])),
        st.tuples(st.just("manual"), st.integers(1, TOTAL)),
        st.tuples(st.just("cancel"),),
    ),
    max_size=30,
)


def apply(order: Order, op: tuple) -> None:
    kind = op[0]
    if kind == "request":
        order.request_refund(refund_id=op[1], amount=op[2], restock={"MUG-1": op[3]} if op[3] else {})
    elif kind == "complete":
        order.complete_refund(op[1], provider_refund_id=f"re_{op[1]}")
    elif kind == "fail":
        order.fail_refund(op[1], reason="declined")
    elif kind == "provider_total":
        order.record_provider_refunds(intent_id="pi_1", refunds=[], amount_refunded=op[1])
    elif kind == "provider_item":
        order.record_provider_refunds(intent_id="pi_1", refunds=[
            {"id": op[1], "amount": op[2], "status": "succeeded", "trafi_refund_id": op[3]}], amount_refunded=op[2])
    elif kind == "manual":
        order.refund(op[1], "by hand")
    elif kind == "cancel":
        order.cancel("changed my mind")


@settings(max_examples=400, deadline=None)
@given(refund_ops)
def test_refunds_never_exceed_what_was_captured_and_replay_rebuilds_the_order(ops):
    order = paid_order()
    for op in ops:
        try:
            apply(order, op)
        except DomainError:
            pass  # refused: and nothing of it may have landed
        pending = sum(r["amount"] for r in order.refunds.values() if r["status"] == "pending")
        succeeded = sum(r["amount"] for r in order.refunds.values() if r["status"] == "succeeded")
        assert succeeded == order.refunded_amount
        assert 0 <= order.refunded_amount + pending <= order.paid_amount == TOTAL
        assert order.refundable_on("pi_1") >= 0
        assert sum(order.released.values()) + sum(order.fulfilled.values()) <= 4
        if order.status == "refunded":
            assert order.refunded_amount == TOTAL
        if order.status == "partially_refunded":
            assert 0 < order.refunded_amount < TOTAL
    assert state(replayed(order, order.collect_events())) == state(order)


def _reports() -> list[tuple]:
    return [
        ("intent", "requires_action", 100, 0, None),
        ("intent", "requires_payment_method", 101, 0, "declined"),
        ("intent", "succeeded", 102, TOTAL, None),
        ("refund", 103, [{"id": "re_x", "amount": 1500, "status": "succeeded", "trafi_refund_id": None}], 1500),
        ("refund", 104, [], 2000),  # a later cumulative report without the list
        ("dispute", "dp_1", 700),
    ]


def deliver(order: Order, report: tuple) -> None:
    if report[0] == "intent":
        _, status, at, received, failure = report
        order.record_payment_report(intent_id="pi_1", status=status, at=at, amount_received=received, failure=failure)
    elif report[0] == "refund":
        _, at, items, cumulative = report
        order.record_payment_report(intent_id="pi_1", status="succeeded", at=at, amount_received=TOTAL)
        order.record_provider_refunds(intent_id="pi_1", refunds=items, amount_refunded=cumulative)
    else:
        order.open_dispute(dispute_id=report[1], amount=report[2], reason="fraudulent")


def outcome(order: Order) -> tuple:
    attempt = order.payments[0]
    return (order.status, order.paid_amount, order.refunded_amount, attempt["status"], attempt["captured"],
            sorted(order.disputes), sum(type(e).__name__ == "Paid" for e in order.collect_events()))


@settings(max_examples=200, deadline=None)
@given(st.permutations(_reports() * 2))
def test_provider_reports_in_any_order_and_repeated_end_in_the_same_state(reports):
    order = new_order()
    order.start_payment(attempt=1, provider="stripe", intent_id="pi_1", status="requires_payment_method", at=1)
    for report in reports:
        deliver(order, report)
    assert outcome(order) == ("partially_refunded", TOTAL, 2000, "succeeded", TOTAL, ["dp_1"], 1)


def test_every_order_of_the_non_terminal_reports_ends_in_the_latest_one():
    reports = [("intent", "requires_action", 100, 0, None), ("intent", "requires_payment_method", 101, 0, "declined"),
               ("intent", "processing", 99, 0, None)]
    for permutation in itertools.permutations(reports):
        order = new_order()
        order.start_payment(attempt=1, provider="stripe", intent_id="pi_1", status="requires_payment_method", at=1)
        for report in permutation:
            deliver(order, report)
        assert (order.payments[0]["status"], order.payments[0]["at"], order.payments[0]["failure"]) == (
            "requires_payment_method", 101, "declined"), permutation
