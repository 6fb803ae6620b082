"""The payment service: talks to providers, records their answers through the command bus.

The I/O edge of payments. Each method calls the provider first and records what it
said after, so the event store never claims what the provider did not do; every
provider call carries a deterministic idempotency key, so repeating a method after
a crash or a timeout repeats nothing at the provider:

* intents: "trafi-<order id>-attempt-<n>" — a retried checkout gets the same intent;
* refunds: "trafi-<order id>-refund-<refund id>" — a retried refund pays out once.

A refund is requested on the order first (so two refunds can never together exceed
what was captured), then paid out, then completed. If the provider cannot be
reached it stays pending; `settle_pending_refunds` (the `trafi payments reconcile`
worker, and the API process in embedded mode) finishes it later with the same key.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping
from uuid import UUID

from commands.bus import CommandBus, CommandResult
from commands.context import StoreContext
from commands.orders import CancelOrder
from commands.payments.provider import IntentRequest, IntentState, PaymentProvider, ProviderEvent, ProviderUnavailable
from commands.payments.records import (
    ApplyProviderEvent, CompleteRefund, FailRefund, RecordPaymentAttempt, RecordPaymentReport, RequestRefund,
    refund_view,
)
from domain.errors import Conflict, NotFound
from domain.order import Order
from domain.payments import MANUAL_PROVIDER

log = logging.getLogger("trafi.payments")


@dataclass(frozen=True)
class PaymentOutcome:
    """What a storefront needs after starting or confirming a payment."""

    order_id: UUID
    order_status: str
    attempt: int
    provider: str
    intent_id: str
    status: str  # the intent's status (domain/payments.py)
    amount: int
    currency: str
    client_secret: str | None
    next_action: dict | None
    failure: str | None
    position: int | None


def intent_key(order_id: UUID, attempt: int) -> str:
    return f"trafi-{order_id}-attempt-{attempt}"


def refund_key(order_id: UUID, refund_id: str) -> str:
    return f"trafi-{order_id}-refund-{refund_id}"


class PaymentService:
    def __init__(self, bus: CommandBus, providers: Mapping[str, PaymentProvider], default: str,
                 clock: Callable[[], float] = time.time):
        if default not in providers:
            raise ValueError(f"the default payment provider {default!r} is not configured")
        self.bus = bus
        self.providers = dict(providers)
        self.default = default
        self.clock = clock

    def provider(self, name: str) -> PaymentProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise ProviderUnavailable(f"payment provider {name!r} is not configured in this deployment") from None

    def _order(self, ctx: StoreContext, order_id: UUID) -> Order:
        return self._order_at(ctx, order_id)[0]

    def _order_at(self, ctx: StoreContext, order_id: UUID) -> tuple[Order, int | None]:
        """The order and the position of its last event (what an answer that wrote nothing reports)."""
        found, positions = self.bus.app.load_many([order_id])
        order = found.get(order_id)
        if not isinstance(order, Order) or order.store_id != ctx.store_id:
            raise NotFound("order", order_id)
        return order, positions.get(order_id)

    # --- paying -------------------------------------------------------------------------
    def start_payment(self, ctx: StoreContext, order_id: UUID, *, payment_method: str | None = None,
                      return_url: str | None = None) -> PaymentOutcome:
        """Start paying an order, or resume its current attempt if that can still succeed."""
        order = self._order(ctx, order_id)
        if order.status != "pending_payment":
            raise Conflict(f"the order is {order.status}: nothing to pay", code="payment.not_awaiting_payment")
        current = order.open_attempt()
        if current is not None:
            return self.confirm_payment(ctx, order_id, payment_method=payment_method, return_url=return_url)
        attempt = order.next_attempt_number()
        provider = self.provider(self.default)
        state = provider.create_intent(IntentRequest(
            amount=order.total, currency=order.currency, idempotency_key=intent_key(order.id, attempt),
            metadata={"trafi_store_id": str(ctx.store_id), "trafi_order_id": str(order.id),
                      "trafi_attempt": str(attempt)},
            payment_method=payment_method, return_url=return_url,
        ))
        result = self.bus.execute(RecordPaymentAttempt(
            order_id=order.id, attempt=attempt, provider=provider.name, intent_id=state.intent_id,
            status=state.status, at=int(self.clock()), amount_received=state.amount_received, failure=state.failure,
        ), ctx)
        return self._outcome(ctx, result, provider.name, state)

    def confirm_payment(self, ctx: StoreContext, order_id: UUID, *, payment_method: str | None = None,
                        authentication: str | None = None, return_url: str | None = None) -> PaymentOutcome:
        """The buyer is back (card entered, 3-D Secure done): ask the provider and record its answer.

        A webhook may be recording the same news at the same moment; the order takes it once.
        """
        order = self._order(ctx, order_id)
        if not order.payments:
            raise Conflict("no payment was started for this order", code="payment.not_started")
        attempt = order.payments[-1]
        provider = self.provider(attempt["provider"])
        if payment_method or authentication:
            if order.status != "pending_payment":
                raise Conflict(f"the order is {order.status}: nothing to pay", code="payment.not_awaiting_payment")
            state = provider.confirm(attempt["intent_id"], payment_method=payment_method,
                                     authentication=authentication, return_url=return_url)
        else:
            state = provider.retrieve(attempt["intent_id"])
        result = self.bus.execute(RecordPaymentReport(
            order_id=order.id, intent_id=state.intent_id, status=state.status, at=int(self.clock()),
            amount_received=state.amount_received, failure=state.failure,
        ), ctx)
        return self._outcome(ctx, result, provider.name, state)

    def _outcome(self, ctx: StoreContext, result: CommandResult, provider: str, state: IntentState) -> PaymentOutcome:
        data = result.data
        if data.get("unmatched"):
            self.refund_unmatched(ctx, UUID(data["order_id"]), state.intent_id)
        return PaymentOutcome(
            order_id=UUID(data["order_id"]), order_status=data["status"], attempt=data["attempt"], provider=provider,
            intent_id=state.intent_id, status=data["payment_status"], amount=state.amount, currency=state.currency,
            client_secret=state.client_secret, next_action=state.next_action if data["payment_status"] == "requires_action" else None,
            failure=data["failure"], position=result.position,
        )

    # --- webhooks -----------------------------------------------------------------------
    def handle_webhook(self, ctx: StoreContext, provider_name: str, payload: bytes,
                       headers: Mapping[str, str]) -> tuple[ProviderEvent, CommandResult]:
        """Verify, then apply once: the provider's event id is the idempotency key, so the
        record that it was handled is saved in the same transaction as what it changed.
        Raises InvalidWebhook (nothing changed) for a bad signature, a stale one, or junk."""
        if provider_name not in self.providers:
            raise NotFound("payment provider", provider_name, code="webhook.provider_not_configured")
        provider = self.providers[provider_name]
        event = provider.parse_webhook(payload, headers)
        command = ApplyProviderEvent(
            provider=provider.name, event_id=event.event_id, kind=event.kind, created=event.created,
            intent_id=event.intent_id, status=event.status, amount_received=event.amount_received,
            failure=(event.failure or None) and event.failure[:500], amount_refunded=event.amount_refunded,
            refunds=list(event.refunds), dispute_id=event.dispute_id, amount=event.amount, reason=event.reason[:200],
            order_hint=_uuid_or_none(event.order_hint), attempt_hint=event.attempt_hint if event.attempt_hint and 0 < event.attempt_hint <= 1000 else None,
        )
        # The space keeps these keys apart from every client Idempotency-Key (printable, no spaces).
        result = self.bus.execute(command, ctx, idempotency_key=f"webhook {provider.name}:{event.event_id}")
        if not result.data.get("handled"):
            log.info("webhook %s (%s) acknowledged, nothing to do", event.event_id, event.type)
        elif result.data.get("refund_unmatched") and not result.replayed:
            self.refund_unmatched(ctx, UUID(result.data["order_id"]), result.data["refund_unmatched"])
        return event, result

    # --- refunds ------------------------------------------------------------------------
    def refund(self, ctx: StoreContext, order_id: UUID, *, refund_id: str, amount: int, reason: str = "",
               restock: dict[str, int] | None = None, return_id: str | None = None,
               intent_id: str | None = None) -> CommandResult:
        requested = self.bus.execute(RequestRefund(
            order_id=order_id, refund_id=refund_id, amount=amount, reason=reason, restock=restock or {},
            return_id=return_id, intent_id=intent_id), ctx)
        return _later(requested, self.settle_refund(ctx, order_id, refund_id))

    def refund_return(self, ctx: StoreContext, order_id: UUID, return_id: str, *, amount: int | None = None,
                      reason: str = "") -> CommandResult:
        """Refund a received return: by default what its units cost the buyer. Asked twice, paid once."""
        order = self._order(ctx, order_id)
        if return_id not in order.returns:
            raise NotFound("return", return_id)
        refund_id = f"return_{return_id}"[:100]
        if refund_id in order.refunds:
            return self.settle_refund(ctx, order_id, refund_id)
        value = amount if amount is not None else min(order.return_value(return_id), order.refundable)
        return self.refund(ctx, order_id, refund_id=refund_id, amount=value, reason=reason or "return received",
                           return_id=return_id)

    def refund_unmatched(self, ctx: StoreContext, order_id: UUID, intent_id: str) -> CommandResult | None:
        """Give back money the order could not take (paid after cancellation, charged twice)."""
        order = self._order(ctx, order_id)
        refund_id = f"unmatched_{intent_id}"[:100]
        left = order.refundable_on(intent_id)
        if refund_id not in order.refunds and left > 0:
            return self.refund(ctx, order_id, refund_id=refund_id, amount=left, intent_id=intent_id,
                               reason="payment the order could not take")
        return None

    def cancel(self, ctx: StoreContext, order_id: UUID, *, reason: str = "") -> CommandResult:
        """Cancel, give the stock back and the captured money with it; stop any open intent."""
        result = self.bus.execute(CancelOrder(order_id=order_id, reason=reason), ctx)
        refund_id = result.data.get("refund_id")
        refund = self.settle_refund(ctx, order_id, refund_id) if refund_id else None
        data = {"order_id": result.data["order_id"], "status": result.data["status"],
                "refund": refund.data if refund else None}
        order = self._order(ctx, order_id)
        if (open_attempt := order.open_attempt()) is not None:
            try:
                self.provider(open_attempt["provider"]).cancel(open_attempt["intent_id"])
            except ProviderUnavailable as error:  # a payment that lands anyway is refunded when it is reported
                log.warning("could not cancel intent %s: %s", open_attempt["intent_id"], error)
        return CommandResult(position=_later(result, refund).position if refund else result.position, data=data)

    def settle_refund(self, ctx: StoreContext, order_id: UUID, refund_id: str) -> CommandResult:
        """Pay a pending refund out through the provider that took the money, and record the result."""
        order, position = self._order_at(ctx, order_id)
        refund = order.refunds.get(refund_id)
        if refund is None:
            raise NotFound("refund", refund_id)
        if refund["status"] != "pending":
            return CommandResult(position=position, data=refund_view(order, refund_id))
        intent_id = refund["intent_id"]
        if intent_id is None:  # money taken by hand goes back by hand: the merchant has done it
            return self.bus.execute(CompleteRefund(order_id=order_id, refund_id=refund_id,
                                                   provider_refund_id=f"{MANUAL_PROVIDER}_{refund_id}"), ctx)
        provider = self.provider(order.attempt(intent_id)["provider"])
        try:
            paid_out = provider.refund(intent_id, refund["amount"], idempotency_key=refund_key(order_id, refund_id),
                                       metadata={"trafi_refund_id": refund_id, "trafi_order_id": str(order_id),
                                                 "trafi_store_id": str(ctx.store_id)})
        except ProviderUnavailable as error:
            log.warning("refund %s of order %s stays pending: %s", refund_id, order_id, error)
            return CommandResult(position=position, data=refund_view(order, refund_id))
        if paid_out.status == "succeeded":
            command = CompleteRefund(order_id=order_id, refund_id=refund_id, provider_refund_id=paid_out.refund_id)
        elif paid_out.status == "failed":
            command = FailRefund(order_id=order_id, refund_id=refund_id, reason=paid_out.failure or "refused")
        else:  # the provider finishes it later and says so in a webhook (charge.refunded)
            return CommandResult(position=position, data=refund_view(order, refund_id))
        return self.bus.execute(command, ctx)

    def settle_pending_refunds(self, order_ids: Iterable[UUID]) -> int:
        """Retry every pending refund of these orders (any store); returns how many were settled."""
        settled = 0
        for order_id in order_ids:
            found, _ = self.bus.app.load_many([order_id])
            order = found.get(order_id)
            if not isinstance(order, Order):
                continue
            ctx = StoreContext(order.store_id, actor="system:refunds")
            for refund_id, refund in list(order.refunds.items()):
                if refund["status"] == "pending":
                    settled += self.settle_refund(ctx, order_id, refund_id).data["refund_status"] != "pending"
        return settled


def _uuid_or_none(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        return None


def _later(first: CommandResult, then: CommandResult) -> CommandResult:
    """`then`'s answer with the later of the two positions (read-your-writes covers both)."""
    positions = [p for p in (first.position, then.position) if p is not None]
    return CommandResult(position=max(positions) if positions else None, data=then.data, replayed=first.replayed)
