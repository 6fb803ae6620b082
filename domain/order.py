"""Order: placed from a cart at checkout, with a frozen snapshot of what was bought.

The state machine is a table of allowed transitions (Vendure-style). Anything
not in the table raises `InvalidTransition` with the stable code
`order.invalid_transition`.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransition, InvalidValue
from domain.personal import PersonalData

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending_payment": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"partially_fulfilled", "fulfilled", "cancelled", "partially_refunded", "refunded"}),
    "partially_fulfilled": frozenset({"partially_fulfilled", "fulfilled", "partially_refunded", "refunded"}),
    "fulfilled": frozenset({"delivered", "partially_refunded", "refunded"}),
    "delivered": frozenset({"partially_refunded", "refunded"}),
    "partially_refunded": frozenset({"partially_refunded", "refunded"}),
    "refunded": frozenset(),
    "cancelled": frozenset(),
}
STATES = tuple(TRANSITIONS)


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
        self.paid_amount = 0
        self.refunded_amount = 0
        self.fulfilled: dict[str, int] = {}
        self.payment_reference: str | None = None

    @property
    def total(self) -> int:
        return self.totals["total"]

    def _move(self, target: str) -> None:
        if not can_transition(self.status, target):
            raise InvalidTransition("order", self.status, target)

    # --- payment ---------------------------------------------------------------------
    def mark_paid(self, *, amount: int, reference: str) -> None:
        self._move("paid")
        if amount != self.total:
            raise InvalidValue("amount", f"payment of {amount} does not match the total {self.total}", code="order.amount_mismatch")
        self._paid(amount=amount, reference=reference)

    @event("Paid", topic="trafi.order.paid.v1")
    def _paid(self, amount: int, reference: str) -> None:
        self.status = "paid"
        self.paid_amount = amount
        self.payment_reference = reference

    # --- fulfilment ------------------------------------------------------------------
    def remaining_to_fulfil(self) -> dict[str, int]:
        return {
            l["sku"]: l["quantity"] - self.fulfilled.get(l["sku"], 0)
            for l in self.lines
            if l["quantity"] > self.fulfilled.get(l["sku"], 0)
        }

    def fulfil(self, quantities: dict[str, int], *, carrier: str = "", tracking_number: str = "") -> None:
        remaining = self.remaining_to_fulfil()
        if not quantities:
            raise InvalidValue("lines", "nothing to fulfil", code="order.empty_fulfilment")
        for sku, qty in quantities.items():
            if not isinstance(qty, int) or qty <= 0 or qty > remaining.get(sku, 0):
                raise InvalidValue("lines", f"cannot fulfil {qty} of {sku}", code="order.invalid_fulfilment")
        complete = all(quantities.get(sku, 0) == left for sku, left in remaining.items())
        target = "fulfilled" if complete else "partially_fulfilled"
        self._move(target)
        self._fulfilled(quantities=quantities, carrier=carrier, tracking_number=tracking_number, status=target)

    @event("Fulfilled", topic="trafi.order.fulfilled.v1")
    def _fulfilled(self, quantities: dict, carrier: str, tracking_number: str, status: str) -> None:
        for sku, qty in quantities.items():
            self.fulfilled[sku] = self.fulfilled.get(sku, 0) + qty
        self.status = status

    def mark_delivered(self) -> None:
        self._move("delivered")
        self._delivered()

    @event("Delivered", topic="trafi.order.delivered.v1")
    def _delivered(self) -> None:
        self.status = "delivered"

    # --- cancellation and refunds ------------------------------------------------------
    def cancel(self, reason: str) -> None:
        self._move("cancelled")
        self._cancelled(reason=reason[:500])

    @event("Cancelled", topic="trafi.order.cancelled.v1")
    def _cancelled(self, reason: str) -> None:
        self.status = "cancelled"

    def refund(self, amount: int, reason: str) -> None:
        if not can_transition(self.status, "refunded"):  # nothing was paid, or all of it is back
            raise InvalidTransition("order", self.status, "refunded")
        refundable = self.paid_amount - self.refunded_amount
        if not isinstance(amount, int) or amount <= 0 or amount > refundable:
            raise InvalidValue("amount", f"refund must be between 1 and {refundable}", code="order.invalid_refund")
        target = "refunded" if amount == refundable else "partially_refunded"
        self._move(target)
        self._refunded(amount=amount, reason=reason[:500], status=target)

    @event("Refunded", topic="trafi.order.refunded.v1")
    def _refunded(self, amount: int, reason: str, status: str) -> None:
        self.refunded_amount += amount
        self.status = status
