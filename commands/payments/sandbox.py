"""The sandbox provider: deterministic test cards, no network — the embedded demo's default.

An intent id is derived from the idempotency key (so a retried attempt gets the same
intent, as with Stripe) and carries the amount and currency; the outcome of a
confirmation is decided by the test card alone, so any process can confirm any
sandbox intent. Only `retrieve` (the buyer coming back without a card) uses what
this process remembers; an intent it never saw reads as awaiting a payment method.

| payment_method (or card number)                        | outcome                              |
|--------------------------------------------------------|--------------------------------------|
| `pm_card_visa` / 4242424242424242                      | succeeded                            |
| `pm_card_chargeDeclined` / 4000000000000002            | declined (requires_payment_method)   |
| `pm_card_threeDSecureRequired` / 4000002760003184      | requires_action: confirm again with `authentication` "pass" or "fail" |
"""

from __future__ import annotations

import hashlib
from typing import Mapping

from commands.payments.provider import IntentRequest, IntentState, InvalidWebhook, RefundResult, ProviderEvent
from domain.errors import InvalidValue

SUCCEEDS = {"pm_card_visa", "4242424242424242"}
DECLINED = {"pm_card_chargeDeclined", "4000000000000002"}
NEEDS_3DS = {"pm_card_threeDSecureRequired", "4000002760003184"}
TEST_CARDS = SUCCEEDS | DECLINED | NEEDS_3DS


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class SandboxProvider:
    name = "sandbox"

    def __init__(self) -> None:
        self._last: dict[str, IntentState] = {}

    def create_intent(self, request: IntentRequest) -> IntentState:
        # The amount and currency ride in the id, so later calls need no stored state.
        intent_id = f"pi_sbx_{request.amount}_{request.currency.lower()}_{_digest(request.idempotency_key)}"
        state = IntentState(intent_id=intent_id, status="requires_payment_method", amount=request.amount,
                            currency=request.currency, client_secret=f"{intent_id}_secret_sandbox")
        if request.payment_method:
            return self.confirm(intent_id, payment_method=request.payment_method, authentication=None,
                                return_url=request.return_url)
        return state

    def confirm(self, intent_id: str, *, payment_method: str | None, authentication: str | None,
                return_url: str | None) -> IntentState:
        state = self._decide(intent_id, payment_method, authentication)
        self._last[intent_id] = state
        return state

    def _decide(self, intent_id: str, payment_method: str | None, authentication: str | None) -> IntentState:
        amount, currency = self._parse(intent_id)
        base = dict(intent_id=intent_id, amount=amount, currency=currency, client_secret=f"{intent_id}_secret_sandbox")
        if authentication is not None:
            if authentication == "pass":
                return IntentState(status="succeeded", amount_received=amount, **base)
            return IntentState(status="requires_payment_method", failure="3-D Secure authentication failed", **base)
        if payment_method in SUCCEEDS:
            return IntentState(status="succeeded", amount_received=amount, **base)
        if payment_method in DECLINED:
            return IntentState(status="requires_payment_method", failure="Your card was declined.", **base)
        if payment_method in NEEDS_3DS:
            next_action = {"type": "sandbox_authenticate",
                           "how": "confirm again with authentication 'pass' or 'fail'"}
            return IntentState(status="requires_action", next_action=next_action, **base)
        raise InvalidValue("payment_method", f"the sandbox knows the test cards {', '.join(sorted(TEST_CARDS))}",
                           code="payment.unknown_test_card")

    def retrieve(self, intent_id: str) -> IntentState:
        amount, currency = self._parse(intent_id)
        return self._last.get(intent_id) or IntentState(
            intent_id=intent_id, status="requires_payment_method", amount=amount, currency=currency,
            client_secret=f"{intent_id}_secret_sandbox")

    def cancel(self, intent_id: str) -> IntentState:
        amount, currency = self._parse(intent_id)
        self._last[intent_id] = IntentState(intent_id=intent_id, status="canceled", amount=amount, currency=currency)
        return self._last[intent_id]

    def refund(self, intent_id: str, amount: int, *, idempotency_key: str, metadata: Mapping[str, str]) -> RefundResult:
        return RefundResult(refund_id=f"re_sbx_{_digest(idempotency_key)}", status="succeeded", amount=amount)

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        raise InvalidWebhook("the sandbox sends no webhooks")

    @staticmethod
    def _parse(intent_id: str) -> tuple[int, str]:
        parts = intent_id.split("_")
        if len(parts) != 5 or parts[:2] != ["pi", "sbx"] or not parts[2].isdigit():
            raise InvalidValue("intent_id", "not a sandbox intent", code="payment.unknown_intent")
        return int(parts[2]), parts[3].upper()
