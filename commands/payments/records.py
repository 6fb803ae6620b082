"""Commands that record what payment providers say, on the order's stream.

These never call a provider: the payment service (service.py) does the talking and
hands the answers here, so each answer lands atomically (with its idempotency
record when it came from a webhook) and any number of retries records it once.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from commands.base import Command
from commands.context import StoreContext
from commands.orders import OrderCommand
from commands.stock_effects import settle_stock
from commands.unit_of_work import UnitOfWork
from domain import ids
from domain.order import Order
from domain.payment_reference import PaymentReference

ProviderId = Field(min_length=1, max_length=255)


class RecordPaymentAttempt(OrderCommand):
    """A new intent and what the provider said when it was made (it may already be paid:
    creating with a payment method confirms at once)."""

    attempt: int = Field(ge=1, le=1000)
    provider: str = Field(max_length=50)
    intent_id: str = ProviderId
    status: str = Field(max_length=50)
    at: int
    amount_received: int = 0
    failure: str | None = Field(default=None, max_length=500)

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        return [self.order_id, ids.payment_reference_id(ctx.store_id, self.provider, self.intent_id)]


def record_payment_attempt(cmd: RecordPaymentAttempt, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    _start(order, uow, attempt=cmd.attempt, provider=cmd.provider, intent_id=cmd.intent_id, at=cmd.at)
    order.record_payment_report(intent_id=cmd.intent_id, status=cmd.status, at=cmd.at,
                                amount_received=cmd.amount_received, failure=cmd.failure)
    return payment_view(order, cmd.intent_id)


def _start(order: Order, uow: UnitOfWork, *, attempt: int, provider: str, intent_id: str, at: int) -> None:
    """Record the attempt and, in the same save, the reference webhooks will find the order by."""
    order.start_payment(attempt=attempt, provider=provider, intent_id=intent_id, status="requires_payment_method",
                        at=at)
    reference_id = ids.payment_reference_id(order.store_id, provider, intent_id)
    if uow.find(PaymentReference, reference_id) is None:
        uow.add(PaymentReference(id=reference_id, store_id=order.store_id, order_id=order.id,
                                 provider=provider, intent_id=intent_id))


class RecordPaymentReport(OrderCommand):
    intent_id: str = ProviderId
    status: str = Field(max_length=50)
    at: int
    amount_received: int = 0
    failure: str | None = Field(default=None, max_length=500)


def record_payment_report(cmd: RecordPaymentReport, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.record_payment_report(intent_id=cmd.intent_id, status=cmd.status, at=cmd.at,
                                amount_received=cmd.amount_received, failure=cmd.failure)
    return payment_view(order, cmd.intent_id)


def payment_view(order: Order, intent_id: str) -> dict:
    attempt = order.attempt(intent_id)
    return {"order_id": str(order.id), "status": order.status, "attempt": attempt["attempt"],
            "intent_id": intent_id, "payment_status": attempt["status"], "failure": attempt["failure"],
            "unmatched": _unmatched(order, intent_id)}


def _unmatched(order: Order, intent_id: str) -> bool:
    """Money captured by this intent that the order did not take as its payment (to be refunded)."""
    attempt = order.attempt(intent_id)
    return attempt["status"] == "succeeded" and order.payment_reference != intent_id


class ApplyProviderEvent(Command):
    """A verified webhook. Sent with the idempotency key "<provider>:<event id>", so a
    redelivery replays the first result instead of applying it again."""

    provider: str = Field(max_length=50)
    event_id: str = ProviderId
    kind: str = Field(max_length=20)
    created: int
    intent_id: str | None = Field(default=None, max_length=255)
    status: str | None = Field(default=None, max_length=50)
    amount_received: int = 0
    failure: str | None = Field(default=None, max_length=500)
    amount_refunded: int = 0
    refunds: list[dict] = Field(default_factory=list, max_length=100)
    dispute_id: str | None = Field(default=None, max_length=255)
    amount: int = 0
    reason: str = Field(default="", max_length=200)
    # From the intent's metadata: the order and attempt it was made for. Lets a webhook that
    # overtakes the buyer's own request (or outlives a crash of it) still find its order.
    order_hint: UUID | None = None
    attempt_hint: int | None = Field(default=None, ge=1, le=1000)

    def reference_id(self, ctx: StoreContext) -> UUID | None:
        return ids.payment_reference_id(ctx.store_id, self.provider, self.intent_id) if self.intent_id else None

    def aggregate_ids(self, ctx: StoreContext) -> list[UUID]:
        reference = self.reference_id(ctx)
        return [i for i in (reference, self.order_hint) if i]


def apply_provider_event(cmd: ApplyProviderEvent, uow: UnitOfWork) -> dict:
    order = _order_of(cmd, uow) if cmd.kind != "ignored" else None
    if order is None:
        # Not ours (another store, an intent made outside Trafi) or a type we do not act on.
        return {"handled": False, "order_id": None, "status": None, "refund_unmatched": None}
    if cmd.kind == "intent":
        order.record_payment_report(intent_id=cmd.intent_id, status=cmd.status, at=cmd.created,
                                    amount_received=cmd.amount_received, failure=cmd.failure)
    elif cmd.kind == "refund":
        if cmd.status == "succeeded":  # the charge was paid, whether or not its success arrived yet
            order.record_payment_report(intent_id=cmd.intent_id, status="succeeded", at=cmd.created,
                                        amount_received=cmd.amount_received)
        order.record_provider_refunds(intent_id=cmd.intent_id, refunds=cmd.refunds, amount_refunded=cmd.amount_refunded)
    elif cmd.kind == "dispute":
        order.open_dispute(dispute_id=cmd.dispute_id, amount=cmd.amount, reason=cmd.reason)
    settle_stock(order, uow)
    return {"handled": True, "order_id": str(order.id), "status": order.status,
            "refund_unmatched": cmd.intent_id if cmd.kind in ("intent", "refund") and _unmatched(order, cmd.intent_id) else None}


def _order_of(cmd: ApplyProviderEvent, uow: UnitOfWork) -> Order | None:
    reference_id = cmd.reference_id(uow.ctx)
    reference = uow.find(PaymentReference, reference_id) if reference_id else None
    if reference is not None:
        return uow.get(Order, reference.order_id, "order")
    if cmd.kind != "intent" or cmd.order_hint is None or cmd.attempt_hint is None:
        return None
    order = uow.find(Order, cmd.order_hint)  # tenant-checked: only an order of this store
    if order is None or order.attempt(cmd.intent_id) is not None:
        return order
    if cmd.attempt_hint != order.next_attempt_number() or order.status != "pending_payment" or order.open_attempt():
        return None  # an intent our records cannot place; acknowledged, logged by the caller
    _start(order, uow, attempt=cmd.attempt_hint, provider=cmd.provider, intent_id=cmd.intent_id, at=cmd.created)
    return order


class RequestRefund(OrderCommand):
    refund_id: str = Field(max_length=100)
    amount: int
    reason: str = Field(default="", max_length=500)
    restock: dict[str, int] = Field(default_factory=dict, max_length=100)
    return_id: str | None = Field(default=None, max_length=100)
    intent_id: str | None = Field(default=None, max_length=255)  # default: the payment that paid the order


def request_refund(cmd: RequestRefund, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.request_refund(refund_id=cmd.refund_id, amount=cmd.amount, reason=cmd.reason, restock=cmd.restock,
                         return_id=cmd.return_id, intent_id=cmd.intent_id)
    return refund_view(order, cmd.refund_id)


class CompleteRefund(OrderCommand):
    refund_id: str = Field(max_length=100)
    provider_refund_id: str = ProviderId


def complete_refund(cmd: CompleteRefund, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.complete_refund(cmd.refund_id, provider_refund_id=cmd.provider_refund_id)
    settle_stock(order, uow)
    return refund_view(order, cmd.refund_id)


class FailRefund(OrderCommand):
    refund_id: str = Field(max_length=100)
    reason: str = Field(default="", max_length=500)


def fail_refund(cmd: FailRefund, uow: UnitOfWork) -> dict:
    order = cmd.order(uow)
    order.fail_refund(cmd.refund_id, reason=cmd.reason)
    return refund_view(order, cmd.refund_id)


def refund_view(order: Order, refund_id: str) -> dict:
    refund = order.refunds[refund_id]
    return {"order_id": str(order.id), "status": order.status, "refund_id": refund_id,
            "refund_status": refund["status"], "amount": refund["amount"], "refunded": order.refunded_amount,
            "refundable": order.refundable}
