"""Order: placed from a cart at checkout, then paid, shipped, delivered, refunded or returned.

The state machine is a table of allowed transitions (Vendure-style). Anything
not in the table raises `InvalidTransition` with the stable code
`order.invalid_transition`.

The order's stream is its payment audit trail: every attempt, provider report,
refund, dispute and unexpected payment is an event here. Methods that record
what a payment provider says are idempotent and order-insensitive — a webhook
delivered twice, late or out of order changes nothing the second time and never
moves an order backwards (domain/payments.py has the rule).
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, InvalidTransition, InvalidValue, NotFound
from domain.payments import MANUAL_PROVIDER, OPEN, IntentReport, check_intent_status, refund_share
from domain.personal import PersonalData

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending_payment": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"partially_fulfilled", "fulfilled", "cancelled", "partially_refunded", "refunded"}),
    "partially_fulfilled": frozenset({"partially_fulfilled", "fulfilled", "partially_refunded", "refunded"}),
    "fulfilled": frozenset({"delivered", "partially_refunded", "refunded"}),
    "delivered": frozenset({"partially_refunded", "refunded"}),
    # Part of the money went back (an item out of stock, a return); the rest can still ship.
    "partially_refunded": frozenset({
        "partially_refunded", "refunded", "partially_fulfilled", "fulfilled", "delivered", "cancelled",
    }),
    "refunded": frozenset(),
    # A cancelled order stays cancelled; money that reaches it anyway (a late payment) goes
    # back through refunds that leave the status alone (see `_status_after_refund`).
    "cancelled": frozenset(),
}
STATES = tuple(TRANSITIONS)

RETURN_TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"authorised", "rejected"}),
    "authorised": frozenset({"received"}),
    "received": frozenset({"refunded"}),
    "rejected": frozenset(),
    "refunded": frozenset(),
}
RETURN_STATES = tuple(RETURN_TRANSITIONS)


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


class Order(Aggregate):
    TOPIC = "trafi.order.v1"

    @event("Created", topic="trafi.order.placed.v1")
    def __init__(
        self, id: UUID, store_id: UUID, cart_id: UUID, customer_id: UUID | None, email: PersonalData | None,
        currency: str, lines: list[dict], totals: dict, country: str, shipping_address: PersonalData | None,
        shipping_method: str | None, token_hash: str,
    ):
        self.store_id = store_id
        self.cart_id = cart_id
        self.customer_id = customer_id
        self.email = email
        self.currency = currency
        self.lines = lines
        self.totals = totals
        self.country = country
        self.shipping_address = shipping_address
        self.shipping_method = shipping_method
        self.token_hash = token_hash
        self.status = "pending_payment"
        self.paid_amount = 0  # everything captured, including payments the order did not expect
        self.refunded_amount = 0  # refunds that succeeded
        self.fulfilled: dict[str, int] = {}
        self.released: dict[str, int] = {}  # units refunded before shipping: they will not ship
        self.payment_reference: str | None = None
        self.payments: list[dict] = []  # attempt n is payments[n - 1]
        self.refunds: dict[str, dict] = {}
        self.fulfilments: dict[str, dict] = {}
        self.returns: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}

    @property
    def total(self) -> int:
        return self.totals["total"]

    def _move(self, target: str) -> None:
        if not can_transition(self.status, target):
            raise InvalidTransition("order", self.status, target)

    # --- payment attempts ------------------------------------------------------------
    def attempt(self, intent_id: str) -> dict | None:
        return next((p for p in self.payments if p["intent_id"] == intent_id), None)

    def open_attempt(self) -> dict | None:
        """The latest attempt if it can still succeed: a retry resumes it instead of charging anew."""
        if self.payments and self.payments[-1]["status"] in OPEN:
            return self.payments[-1]
        return None

    def next_attempt_number(self) -> int:
        return len(self.payments) + 1

    def start_payment(self, *, attempt: int, provider: str, intent_id: str, status: str, at: int) -> None:
        """Record a new provider intent. The same attempt recorded again (a retry) is a no-op."""
        check_intent_status(status)
        if attempt <= len(self.payments):
            if self.payments[attempt - 1]["intent_id"] == intent_id:
                return
            raise Conflict(f"payment attempt {attempt} is already recorded", code="payment.attempt_taken")
        if self.status != "pending_payment":
            raise Conflict(f"the order is {self.status}: nothing to pay", code="payment.not_awaiting_payment")
        if self.open_attempt() is not None:
            raise Conflict("the order's current payment can still go through", code="payment.attempt_open")
        if attempt != self.next_attempt_number():
            raise Conflict(f"the next payment attempt is {self.next_attempt_number()}", code="payment.attempt_taken")
        self._payment_started(attempt=attempt, provider=provider, intent_id=intent_id, amount=self.total,
                              status=status, at=at)

    @event("PaymentStarted", topic="trafi.order.payment_started.v1")
    def _payment_started(self, attempt: int, provider: str, intent_id: str, amount: int, status: str, at: int) -> None:
        self.payments.append({"attempt": attempt, "provider": provider, "intent_id": intent_id, "amount": amount,
                              "status": status, "at": at, "failure": None, "captured": 0})

    def record_payment_report(self, *, intent_id: str, status: str, at: int, amount_received: int = 0,
                              failure: str | None = None) -> None:
        """What the provider says about one of this order's intents — from the buyer's confirm or a webhook.

        Both paths race on this method; the aggregate's version makes one of them win and
        the other, retried, finds the news already recorded: one `Paid`, never two.
        """
        check_intent_status(status)
        attempt = self.attempt(intent_id)
        if attempt is None:
            raise NotFound("payment", intent_id)
        if status == "succeeded":
            self._payment_succeeded(attempt, amount_received, at)
        elif failure and status == "requires_payment_method":
            # A decline sends the intent back to requires_payment_method; of several, the latest counts.
            if attempt["status"] not in ("succeeded", "canceled") and at >= attempt["at"]:
                self._payment_failed(intent_id=intent_id, reason=failure[:500], at=at)
        elif IntentReport(status, at).supersedes(attempt["status"], attempt["at"]):
            self._payment_status_changed(intent_id=intent_id, status=status, at=at)

    def _payment_succeeded(self, attempt: dict, amount: int, at: int) -> None:
        intent_id = attempt["intent_id"]
        if attempt["status"] == "succeeded":
            return  # told twice
        if self.status == "pending_payment" and amount == self.total:
            self._paid(amount=amount, reference=intent_id, attempt=attempt["attempt"], at=at)
        else:
            # Money arrived that the order cannot take as its payment: cancelled meanwhile, a
            # second attempt also charged, or an amount that does not match. It is recorded so
            # that it can be refunded, and the order's status does not move.
            reason = ("order_" + self.status if self.status in ("cancelled", "refunded")
                      else "already_paid" if self.status != "pending_payment" else "amount_mismatch")
            self._payment_unmatched(intent_id=intent_id, amount=amount, reason=reason, at=at)

    @event("PaymentStatusChanged", topic="trafi.order.payment_status_changed.v1")
    def _payment_status_changed(self, intent_id: str, status: str, at: int) -> None:
        attempt = self.attempt(intent_id)
        attempt["status"], attempt["at"] = status, at

    @event("PaymentFailed", topic="trafi.order.payment_failed.v1")
    def _payment_failed(self, intent_id: str, reason: str, at: int) -> None:
        attempt = self.attempt(intent_id)
        attempt["status"], attempt["at"], attempt["failure"] = "requires_payment_method", at, reason

    @event("PaymentUnmatched", topic="trafi.order.payment_unmatched.v1")
    def _payment_unmatched(self, intent_id: str, amount: int, reason: str, at: int) -> None:
        attempt = self.attempt(intent_id)
        attempt["status"], attempt["at"], attempt["captured"] = "succeeded", at, amount
        self.paid_amount += amount

    def mark_paid(self, *, amount: int, reference: str) -> None:
        """Payment received outside any provider (bank transfer, cash), recorded by staff."""
        self._move("paid")
        if amount != self.total:
            raise InvalidValue("amount", f"payment of {amount} does not match the total {self.total}", code="order.amount_mismatch")
        self._paid(amount=amount, reference=reference)

    @event("Paid", topic="trafi.order.paid.v1")
    def _paid(self, amount: int, reference: str, attempt: int | None = None, at: int | None = None) -> None:
        self.status = "paid"
        self.paid_amount += amount
        self.payment_reference = reference
        if attempt is not None:
            record = self.payments[attempt - 1]
            record["status"], record["at"], record["captured"] = "succeeded", at, amount

    def payment_provider(self) -> str:
        """Who holds the captured money: the provider of the attempt that paid, else manual."""
        paid = next((p for p in self.payments if p["status"] == "succeeded"), None)
        return paid["provider"] if paid else MANUAL_PROVIDER

    def open_dispute(self, *, dispute_id: str, amount: int, reason: str) -> None:
        if dispute_id not in self.disputes:
            self._disputed(dispute_id=dispute_id, amount=amount, reason=reason[:200])

    @event("Disputed", topic="trafi.order.disputed.v1")
    def _disputed(self, dispute_id: str, amount: int, reason: str) -> None:
        self.disputes[dispute_id] = {"amount": amount, "reason": reason}

    # --- fulfilment ------------------------------------------------------------------
    def remaining_to_fulfil(self) -> dict[str, int]:
        left = {l["sku"]: l["quantity"] - self.fulfilled.get(l["sku"], 0) - self.released.get(l["sku"], 0)
                for l in self.lines}
        return {sku: qty for sku, qty in left.items() if qty > 0}

    def fulfil(self, quantities: dict[str, int], *, carrier: str = "", tracking_number: str = "",
               fulfilment_id: str | None = None) -> bool:
        """Ship units. With a `fulfilment_id` (a 3PL's shipment id) a repeat is a no-op; returns False then."""
        if fulfilment_id is not None and fulfilment_id in self.fulfilments:
            if self.fulfilments[fulfilment_id]["lines"] != quantities:
                raise Conflict(f"fulfilment {fulfilment_id} was recorded with other lines", code="order.fulfilment_exists")
            return False
        remaining = self.remaining_to_fulfil()
        if not quantities:
            raise InvalidValue("lines", "nothing to fulfil", code="order.empty_fulfilment")
        for sku, qty in quantities.items():
            if not isinstance(qty, int) or qty <= 0 or qty > remaining.get(sku, 0):
                raise InvalidValue("lines", f"cannot fulfil {qty} of {sku}", code="order.invalid_fulfilment")
        complete = all(quantities.get(sku, 0) == left for sku, left in remaining.items())
        target = "fulfilled" if complete else "partially_fulfilled"
        self._move(target)
        self._fulfilled(quantities=quantities, carrier=carrier, tracking_number=tracking_number, status=target,
                        fulfilment_id=fulfilment_id)
        return True

    @event("Fulfilled", topic="trafi.order.fulfilled.v1")
    def _fulfilled(self, quantities: dict, carrier: str, tracking_number: str, status: str,
                   fulfilment_id: str | None = None) -> None:
        for sku, qty in quantities.items():
            self.fulfilled[sku] = self.fulfilled.get(sku, 0) + qty
        self.status = status
        key = fulfilment_id or f"f{len(self.fulfilments) + 1}"  # shipments without a 3PL id: f1, f2, …
        self.fulfilments[key] = {"lines": dict(quantities), "carrier": carrier, "tracking_number": tracking_number}

    def update_tracking(self, fulfilment_id: str, *, carrier: str, tracking_number: str) -> None:
        shipment = self.fulfilments.get(fulfilment_id)
        if shipment is None:
            raise NotFound("fulfilment", fulfilment_id)
        if (shipment["carrier"], shipment["tracking_number"]) != (carrier, tracking_number):
            self._tracking_updated(fulfilment_id=fulfilment_id, carrier=carrier, tracking_number=tracking_number)

    @event("TrackingUpdated", topic="trafi.order.tracking_updated.v1")
    def _tracking_updated(self, fulfilment_id: str, carrier: str, tracking_number: str) -> None:
        self.fulfilments[fulfilment_id].update(carrier=carrier, tracking_number=tracking_number)

    def mark_delivered(self) -> None:
        if self.remaining_to_fulfil():
            raise InvalidTransition("order", self.status, "delivered")
        self._move("delivered")
        self._delivered()

    @event("Delivered", topic="trafi.order.delivered.v1")
    def _delivered(self) -> None:
        self.status = "delivered"

    # --- cancellation ----------------------------------------------------------------------
    def cancel(self, reason: str) -> None:
        if self.fulfilled:
            raise InvalidTransition("order", self.status, "cancelled")
        self._move("cancelled")
        self._cancelled(reason=reason[:500])

    @event("Cancelled", topic="trafi.order.cancelled.v1")
    def _cancelled(self, reason: str) -> None:
        self.status = "cancelled"

    # --- refunds ---------------------------------------------------------------------------
    @property
    def pending_refund_amount(self) -> int:
        return sum(r["amount"] for r in self.refunds.values() if r["status"] == "pending")

    @property
    def refundable(self) -> int:
        """Captured, minus what went back or is on its way back."""
        return self.paid_amount - self.refunded_amount - self.pending_refund_amount

    def refundable_on(self, intent_id: str | None) -> int:
        """What one payment (an intent; None: money taken by hand) can still give back."""
        if intent_id is None:
            captured = self.paid_amount - sum(p["captured"] for p in self.payments)
        else:
            captured = self.attempt(intent_id)["captured"]
        back = sum(r["amount"] for r in self.refunds.values() if r["intent_id"] == intent_id and r["status"] != "failed")
        return captured - back

    def order_payment_intent(self) -> str | None:
        """The intent that paid this order, or None if it was paid by hand (or not at all)."""
        return self.payment_reference if self.payment_reference and self.attempt(self.payment_reference) else None

    def request_refund(self, *, refund_id: str, amount: int, reason: str = "", restock: dict[str, int] | None = None,
                       return_id: str | None = None, intent_id: str | None = None) -> bool:
        """Ask for money back from one payment (by default the one that paid the order).

        The same `refund_id` asked again is a no-op (returns False). Never more than that
        payment captured minus what went back or is on its way back.
        """
        if refund_id in self.refunds:
            if self.refunds[refund_id]["amount"] != amount:
                raise Conflict(f"refund {refund_id} was asked for {self.refunds[refund_id]['amount']}, not {amount}",
                               code="refund.id_reused")
            return False
        if self.refundable <= 0:
            raise InvalidTransition("order", self.status, "refunded")
        if intent_id is None:
            intent_id = self.order_payment_intent()
        elif self.attempt(intent_id) is None:
            raise NotFound("payment", intent_id)
        limit = min(self.refundable, self.refundable_on(intent_id))
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= limit:
            raise InvalidValue("amount", f"refund must be between 1 and {limit}", code="order.invalid_refund")
        restock = dict(restock or {})
        self._check_restock(restock)
        if return_id is not None:
            self._check_return_refund(return_id)
        self._status_after_refund(self.refunded_amount + amount)  # refuses a refund the status forbids
        self._refund_requested(refund_id=refund_id, amount=amount, reason=reason[:500], restock=restock,
                               return_id=return_id, intent_id=intent_id)
        return True

    def _check_restock(self, restock: dict[str, int]) -> None:
        ordered = {l["sku"]: l["quantity"] for l in self.lines}
        already = self.restocked_units()
        for sku, qty in restock.items():
            if sku not in ordered or not isinstance(qty, int) or qty <= 0 or already.get(sku, 0) + qty > ordered[sku]:
                raise InvalidValue("restock", f"cannot restock {qty} of {sku}", code="order.invalid_restock")

    def restocked_units(self) -> dict[str, int]:
        units: dict[str, int] = {}
        for refund in self.refunds.values():
            if refund["status"] != "failed":
                for sku, qty in refund["restock"].items():
                    units[sku] = units.get(sku, 0) + qty
        for ret in self.returns.values():
            if ret.get("restocked"):
                for sku, qty in ret["lines"].items():
                    units[sku] = units.get(sku, 0) + qty
        return units

    def _status_after_refund(self, refunded_total: int) -> str:
        """The status a refund leads to. A closed order keeps its status while extra money
        (a late or duplicate payment) goes back."""
        if self.status in ("cancelled", "refunded"):
            return self.status
        target = "refunded" if refunded_total >= self.paid_amount else "partially_refunded"
        self._move(target)
        return target

    @event("RefundRequested", topic="trafi.order.refund_requested.v1")
    def _refund_requested(self, refund_id: str, amount: int, reason: str, restock: dict, return_id: str | None,
                          intent_id: str | None = None) -> None:
        self.refunds[refund_id] = {"amount": amount, "reason": reason, "restock": dict(restock), "intent_id": intent_id,
                                   "return_id": return_id, "status": "pending", "provider_refund_id": None}

    def units_to_release(self, restock: dict[str, int]) -> dict[str, int]:
        """Of units restocked by a refund, those not shipped yet: they are released, not received back."""
        left = self.remaining_to_fulfil()
        return {sku: min(qty, left.get(sku, 0)) for sku, qty in restock.items() if left.get(sku, 0)}

    def complete_refund(self, refund_id: str, *, provider_refund_id: str) -> bool:
        """The provider paid the refund out. Idempotent: returns False if it was already recorded."""
        refund = self._refund(refund_id)
        if refund["status"] == "succeeded":
            return False
        if refund["status"] == "failed":
            raise Conflict(f"refund {refund_id} failed", code="refund.failed")
        status = self._status_after_refund(self.refunded_amount + refund["amount"])
        released = self.units_to_release(refund["restock"])
        restocked = {sku: qty - released.get(sku, 0) for sku, qty in refund["restock"].items() if qty > released.get(sku, 0)}
        self._refunded(amount=refund["amount"], reason=refund["reason"], status=status, refund_id=refund_id,
                       provider_refund_id=provider_refund_id, released=released, restocked=restocked)
        return True

    def fail_refund(self, refund_id: str, *, reason: str) -> bool:
        refund = self._refund(refund_id)
        if refund["status"] != "pending":
            return False
        self._refund_failed(refund_id=refund_id, reason=reason[:500])
        return True

    def _refund(self, refund_id: str) -> dict:
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise NotFound("refund", refund_id)
        return refund

    def record_provider_refunds(self, *, intent_id: str, refunds: list[dict], amount_refunded: int) -> None:
        """Refunds the provider reports on one payment (Stripe's `charge.refunded`).

        Ours (matched by the refund id we gave the provider) are completed; refunds made
        elsewhere (the provider's dashboard) are recorded as they are. The report's
        cumulative `amount_refunded` bounds what it can add, so reports arriving in any
        order, itemised or not, end at the same totals — never above what was captured.
        """
        if self.attempt(intent_id) is None:
            raise NotFound("payment", intent_id)

        def accounted() -> int:
            return sum(r["amount"] for r in self.refunds.values()
                       if r["intent_id"] == intent_id and r["status"] != "failed")

        known = {r["provider_refund_id"] for r in self.refunds.values() if r["provider_refund_id"]}
        for item in refunds:
            ours = item.get("trafi_refund_id")
            if ours in self.refunds:
                if self.refunds[ours]["status"] == "pending" and item.get("status") == "succeeded":
                    self.complete_refund(ours, provider_refund_id=item["id"])
            elif item["id"] not in known and item.get("status") == "succeeded":
                amount = min(item["amount"], amount_refunded - accounted())
                self._external_refund(f"ext_{item['id']}", item["id"], amount, intent_id)
            known.add(item["id"])
        if not refunds and amount_refunded > accounted():
            self._external_refund(f"ext_total_{amount_refunded}", None, amount_refunded - accounted(), intent_id)

    def _external_refund(self, refund_id: str, provider_refund_id: str | None, amount: int, intent_id: str) -> None:
        amount = min(amount, self.refundable, self.refundable_on(intent_id))
        if amount <= 0 or refund_id in self.refunds:
            return
        self.request_refund(refund_id=refund_id, amount=amount, reason="refunded at the payment provider",
                            intent_id=intent_id)
        self.complete_refund(refund_id, provider_refund_id=provider_refund_id or refund_id)

    @event("Refunded", topic="trafi.order.refunded.v1")
    def _refunded(self, amount: int, reason: str, status: str, refund_id: str | None = None,
                  provider_refund_id: str | None = None, released: dict | None = None,
                  restocked: dict | None = None) -> None:
        # released: refunded units that had not shipped (their reservation ends);
        # restocked: refunded units that had shipped and are back on the shelf.
        self.refunded_amount += amount
        self.status = status
        for sku, qty in (released or {}).items():
            self.released[sku] = self.released.get(sku, 0) + qty
        if refund_id is not None and refund_id in self.refunds:
            refund = self.refunds[refund_id]
            refund["status"], refund["provider_refund_id"] = "succeeded", provider_refund_id
            if refund["return_id"] in self.returns:
                self.returns[refund["return_id"]]["status"] = "refunded"

    @event("RefundFailed", topic="trafi.order.refund_failed.v1")
    def _refund_failed(self, refund_id: str, reason: str) -> None:
        self.refunds[refund_id]["status"] = "failed"

    def refund(self, amount: int, reason: str, *, restock: dict[str, int] | None = None) -> str:
        """A refund paid out by hand, recorded at once — only for money taken by hand."""
        if self.order_payment_intent() is not None:
            raise Conflict("this order was paid through a payment provider; refund it through the provider",
                           code="refund.provider_payment")
        refund_id = f"manual_{len(self.refunds) + 1}"
        self.request_refund(refund_id=refund_id, amount=amount, reason=reason, restock=restock)
        self.complete_refund(refund_id, provider_refund_id=refund_id)
        return refund_id

    # --- returns ---------------------------------------------------------------------------
    def request_return(self, *, return_id: str, lines: dict[str, int], reason: str = "") -> bool:
        if return_id in self.returns:
            if self.returns[return_id]["lines"] != lines:
                raise Conflict(f"return {return_id} was requested with other lines", code="return.exists")
            return False
        if not lines:
            raise InvalidValue("lines", "nothing to return", code="order.invalid_return")
        returnable = self.returnable_units()
        for sku, qty in lines.items():
            if not isinstance(qty, int) or qty <= 0 or qty > returnable.get(sku, 0):
                raise InvalidValue("lines", f"cannot return {qty} of {sku}: {returnable.get(sku, 0)} shipped "
                                   "and not returned", code="order.invalid_return")
        self._return_requested(return_id=return_id, lines=dict(lines), reason=reason[:500])
        return True

    def returnable_units(self) -> dict[str, int]:
        """Shipped units not already in a return that is under way or done."""
        units = dict(self.fulfilled)
        for ret in self.returns.values():
            if ret["status"] != "rejected":
                for sku, qty in ret["lines"].items():
                    units[sku] -= qty
        return {sku: qty for sku, qty in units.items() if qty > 0}

    @event("ReturnRequested", topic="trafi.order.return_requested.v1")
    def _return_requested(self, return_id: str, lines: dict, reason: str) -> None:
        self.returns[return_id] = {"lines": dict(lines), "reason": reason, "status": "requested", "restocked": False}

    def _move_return(self, return_id: str, target: str) -> dict:
        ret = self.returns.get(return_id)
        if ret is None:
            raise NotFound("return", return_id)
        if target not in RETURN_TRANSITIONS[ret["status"]]:
            raise InvalidTransition("return", ret["status"], target)
        return ret

    def authorise_return(self, return_id: str) -> None:
        self._move_return(return_id, "authorised")
        self._return_authorised(return_id=return_id)

    @event("ReturnAuthorised", topic="trafi.order.return_authorised.v1")
    def _return_authorised(self, return_id: str) -> None:
        self.returns[return_id]["status"] = "authorised"

    def reject_return(self, return_id: str, reason: str) -> None:
        self._move_return(return_id, "rejected")
        self._return_rejected(return_id=return_id, reason=reason[:500])

    @event("ReturnRejected", topic="trafi.order.return_rejected.v1")
    def _return_rejected(self, return_id: str, reason: str) -> None:
        self.returns[return_id]["status"] = "rejected"

    def receive_return(self, return_id: str, *, restock: bool) -> dict[str, int]:
        """The parcel is back. Returns the units to put back on the shelf (none unless `restock`)."""
        ret = self._move_return(return_id, "received")
        self._return_received(return_id=return_id, restock=restock)
        return dict(ret["lines"]) if restock else {}

    @event("ReturnReceived", topic="trafi.order.return_received.v1")
    def _return_received(self, return_id: str, restock: bool) -> None:
        self.returns[return_id].update(status="received", restocked=restock)

    def _check_return_refund(self, return_id: str) -> None:
        self._move_return(return_id, "refunded")
        if any(r["return_id"] == return_id and r["status"] != "failed" for r in self.refunds.values()):
            raise Conflict(f"return {return_id} already has a refund", code="return.already_refunded")

    def return_value(self, return_id: str) -> int:
        """What the returned units cost the buyer (shipping is not refunded by default)."""
        lines = {line["sku"]: line for line in self.totals["lines"]}
        ordered = {line["sku"]: line["quantity"] for line in self.lines}
        ret = self.returns[return_id]
        return sum(refund_share(lines[sku]["gross"], ordered[sku], qty) for sku, qty in ret["lines"].items())
