"""Payment vocabulary shared by the Order aggregate and every payment provider.

A payment attempt is one provider-side payment intent (a Stripe PaymentIntent, a
sandbox intent). Its status uses Stripe's words because they are the most widely
known; other providers map onto them. Pure values and rules, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidValue

# An intent that can still succeed. `failed` is not a status: a declined card sends a
# Stripe intent back to requires_payment_method, and the buyer may try another card.
OPEN = frozenset({"requires_payment_method", "requires_confirmation", "requires_action", "processing"})
TERMINAL = frozenset({"succeeded", "canceled"})
INTENT_STATUSES = OPEN | TERMINAL

# When two reports about one intent carry the same provider timestamp, the one further
# along wins, so the outcome does not depend on which arrived first.
_PROGRESS = {"requires_payment_method": 0, "requires_confirmation": 1, "requires_action": 2, "processing": 3,
             "canceled": 4, "succeeded": 5}

MANUAL_PROVIDER = "manual"  # paid outside any provider (bank transfer, cash); refunded the same way


def check_intent_status(status: str) -> str:
    if status not in INTENT_STATUSES:
        raise InvalidValue("status", f"unknown payment status {status!r}", code="payment.unknown_status")
    return status


@dataclass(frozen=True)
class IntentReport:
    """What a provider said about an intent at a moment (`at`: the provider's clock, seconds)."""

    status: str
    at: int

    def supersedes(self, recorded_status: str, recorded_at: int) -> bool:
        """Whether this report should replace what is recorded.

        Terminal states never change; otherwise the later report wins, and on a tie the
        one further along. Applying reports in any order therefore ends in the same state.
        """
        if recorded_status in TERMINAL:
            return False
        if self.at != recorded_at:
            return self.at > recorded_at
        return _PROGRESS[self.status] > _PROGRESS[recorded_status]


def refund_share(line_gross: int, line_quantity: int, quantity: int) -> int:
    """What `quantity` units of a line cost the buyer, rounded down (never refund more than was paid)."""
    if not 0 < quantity <= line_quantity:
        raise InvalidValue("lines", f"cannot return {quantity} of {line_quantity}", code="order.invalid_return")
    return line_gross * quantity // line_quantity
