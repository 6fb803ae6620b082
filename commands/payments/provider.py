"""The payment provider interface: what Trafi asks of Stripe, the sandbox, or a plugin.

A provider turns an order's amount into a provider-side intent, reports the intent's
state, pays refunds out and reads its own webhooks. Everything it returns is in the
provider-neutral words of domain/payments.py. Providers never touch the event store:
the payment service (service.py) records what they say through the command bus.

Plugins (Mollie, PayPal, …) are classes with this shape, registered under the
`trafi.payment_providers` entry-point group and chosen with TRAFI_PAYMENT_PROVIDER.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol

from domain.errors import DomainError


@dataclass(frozen=True)
class IntentRequest:
    amount: int  # minor units
    currency: str
    idempotency_key: str  # the same order attempt always sends the same key
    metadata: Mapping[str, str]
    payment_method: str | None = None  # confirm at once with this method (server-side confirmation)
    return_url: str | None = None  # where a 3-D Secure challenge sends the buyer back


@dataclass(frozen=True)
class IntentState:
    intent_id: str
    status: str  # domain.payments.INTENT_STATUSES
    amount: int
    currency: str
    amount_received: int = 0
    client_secret: str | None = None  # for the provider's browser SDK (Stripe.js)
    next_action: dict | None = None  # what the buyer must do for requires_action (3-D Secure)
    failure: str | None = None  # the last decline's message


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str  # "succeeded", "pending" (the provider will finish it) or "failed"
    amount: int
    failure: str | None = None


@dataclass(frozen=True)
class ProviderEvent:
    """One webhook, verified and read. `kind` says which fields matter:

    * "intent": `status` (and `amount_received`, `failure`) of `intent_id`;
    * "refund": the charge's refunds (`refunds`, `amount_refunded`);
    * "dispute": `dispute_id`, `amount`, `reason`;
    * "ignored": a type Trafi does not act on (acknowledged and logged).
    """

    event_id: str
    type: str  # the provider's own name, e.g. payment_intent.succeeded
    kind: str
    created: int  # the provider's clock, seconds
    intent_id: str | None = None
    status: str | None = None
    amount_received: int = 0
    failure: str | None = None
    amount_refunded: int = 0
    refunds: tuple[dict, ...] = field(default_factory=tuple)  # {"id", "amount", "status", "trafi_refund_id"}
    dispute_id: str | None = None
    amount: int = 0
    reason: str = ""
    order_hint: str | None = None  # the intent's metadata: which order and attempt it was made for
    attempt_hint: int | None = None


class PaymentDeclined(DomainError):
    """The provider refused the payment method; the buyer may try another."""

    code = "payment.declined"


class ProviderUnavailable(DomainError):
    """The provider could not be reached or answered with an error of its own. Safe to retry."""

    code = "payment.provider_unavailable"


class InvalidWebhook(DomainError):
    """A webhook whose signature, timestamp or body does not check out. Nothing was changed."""

    code = "webhook.invalid_signature"

    def __init__(self, reason: str):
        super().__init__(reason, field="Stripe-Signature")


class PaymentProvider(Protocol):
    name: str

    def create_intent(self, request: IntentRequest) -> IntentState: ...

    def confirm(self, intent_id: str, *, payment_method: str | None, authentication: str | None,
                return_url: str | None) -> IntentState: ...

    def retrieve(self, intent_id: str) -> IntentState: ...

    def cancel(self, intent_id: str) -> IntentState: ...

    def refund(self, intent_id: str, amount: int, *, idempotency_key: str, metadata: Mapping[str, str]) -> RefundResult: ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent: ...
