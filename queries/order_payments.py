"""An order's money and parcels, read from its own stream: the payment audit trail.

Read from the write side, not a read model: the trail is the order's events
themselves (every attempt, provider report, refund and dispute), so an auditor sees
exactly what was recorded and in which order.
"""

from __future__ import annotations

from uuid import UUID

from commands.application import TrafiApplication
from commands.context import StoreContext
from domain.envelope import build_envelope
from domain.errors import NotFound
from domain.order import Order
from queries.model import QueryModel

# Everything about money on the order's stream (placement fixes the amount owed).
PAYMENT_EVENTS = (
    Order.Created, Order.PaymentStarted, Order.PaymentStatusChanged, Order.PaymentFailed, Order.Paid,
    Order.PaymentUnmatched, Order.Disputed, Order.Cancelled, Order.RefundRequested, Order.Refunded,
    Order.RefundFailed,
)
_PAYMENT_TOPICS = frozenset(cls.TOPIC for cls in PAYMENT_EVENTS)


class PaymentAttempt(QueryModel):
    attempt: int
    provider: str
    intent_id: str
    amount: int
    status: str
    captured: int
    failure: str | None


class RefundRecord(QueryModel):
    refund_id: str
    amount: int
    status: str  # pending, succeeded or failed
    reason: str
    intent_id: str | None
    provider_refund_id: str | None
    restock: dict[str, int]
    return_id: str | None


class DisputeRecord(QueryModel):
    dispute_id: str
    amount: int
    reason: str


class FulfilmentRecord(QueryModel):
    fulfilment_id: str
    lines: dict[str, int]
    carrier: str
    tracking_number: str


class ReturnRecord(QueryModel):
    return_id: str
    lines: dict[str, int]
    reason: str
    status: str
    restocked: bool


class TrailEntry(QueryModel):
    version: int
    type: str
    occurred_at: str
    data: dict


class OrderPayments(QueryModel):
    order_id: UUID
    status: str
    currency: str
    total: int
    paid_amount: int
    refunded_amount: int
    refundable: int
    attempts: tuple[PaymentAttempt, ...]
    refunds: tuple[RefundRecord, ...]
    disputes: tuple[DisputeRecord, ...]
    fulfilments: tuple[FulfilmentRecord, ...]
    returns: tuple[ReturnRecord, ...]
    trail: tuple[TrailEntry, ...]


class OrderPaymentsQueries:
    def __init__(self, app: TrafiApplication):
        self.app = app

    def order_payments(self, ctx: StoreContext, order_id: UUID) -> OrderPayments:
        found, _ = self.app.load_many([order_id])
        order = found.get(order_id)
        if not isinstance(order, Order) or order.store_id != ctx.store_id:
            raise NotFound("order", order_id)
        trail = []
        for event in self.app.events.get(order_id):
            if type(event).TOPIC in _PAYMENT_TOPICS:
                envelope = build_envelope(position=None, aggregate_id=order_id, version=event.originator_version,
                                          topic=type(event).TOPIC, event=event, store_id=order.store_id)
                data = envelope["data"]
                if isinstance(event, Order.Created):  # the amounts owed; the buyer's details are not payment data
                    data = {"currency": data["currency"], "totals": data["totals"]}
                trail.append(TrailEntry(version=envelope["version"], type=envelope["type"],
                                        occurred_at=envelope["occurred_at"], data=data))
        return OrderPayments(
            order_id=order.id, status=order.status, currency=order.currency, total=order.total,
            paid_amount=order.paid_amount, refunded_amount=order.refunded_amount, refundable=order.refundable,
            attempts=tuple(PaymentAttempt(**{k: p[k] for k in PaymentAttempt.model_fields}) for p in order.payments),
            refunds=tuple(RefundRecord(refund_id=key, **{k: r[k] for k in RefundRecord.model_fields if k != "refund_id"})
                          for key, r in order.refunds.items()),
            disputes=tuple(DisputeRecord(dispute_id=key, **d) for key, d in order.disputes.items()),
            fulfilments=tuple(FulfilmentRecord(fulfilment_id=key, **f) for key, f in order.fulfilments.items()),
            returns=tuple(ReturnRecord(return_id=key, **r) for key, r in order.returns.items()),
            trail=tuple(trail),
        )
