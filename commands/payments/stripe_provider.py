"""Stripe, through its official SDK (`stripe.StripeClient`).

* One PaymentIntent per order attempt, created with a deterministic idempotency key
  (order id + attempt): a retried checkout reuses the key, so Stripe returns the same
  intent instead of charging twice.
* Automatic payment methods (cards, Apple Pay, Google Pay, … as enabled in the Stripe
  dashboard); `requires_action` (3-D Secure) comes back with Stripe's `next_action`.
* Network retries are the SDK's own (`max_network_retries`); it sends the same
  idempotency key on each, so a retry is safe. The API base address is configurable:
  tests point it at a local server that answers like Stripe.
* Webhooks are verified on the raw body with `stripe.Webhook.construct_event`
  (signature + 300 s timestamp tolerance) before anything is read from them.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import stripe

from commands.payments.provider import (
    IntentRequest, IntentState, InvalidWebhook, PaymentDeclined, ProviderEvent, ProviderUnavailable, RefundResult,
)

log = logging.getLogger("trafi.payments.stripe")

# Stripe's statuses, in the provider-neutral words (we capture automatically, so an
# authorised-not-captured intent is still on its way).
_STATUS = {"requires_capture": "processing"}
_INTENT_EVENTS = {
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.requires_action",
    "payment_intent.canceled", "payment_intent.processing",
}


def _get(obj: Any, key: str, default: Any = None) -> Any:
    try:
        value = obj[key]
    except (KeyError, TypeError, IndexError):
        return default
    return default if value is None else value


def _plain(obj: Any) -> dict:
    """A StripeObject as plain JSON-safe dicts (the SDK's objects refuse dict())."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class StripeProvider:
    name = "stripe"

    def __init__(self, api_key: str, *, webhook_secret: str | None = None, api_base: str | None = None,
                 max_network_retries: int = 2, tolerance_s: int = 300):
        self.client = stripe.StripeClient(
            api_key, base_addresses={"api": api_base} if api_base else None, max_network_retries=max_network_retries,
        )
        self.webhook_secret = webhook_secret
        self.tolerance_s = tolerance_s

    # --- intents ------------------------------------------------------------------------
    def create_intent(self, request: IntentRequest) -> IntentState:
        params: dict[str, Any] = {
            "amount": request.amount, "currency": request.currency.lower(), "metadata": dict(request.metadata),
            "automatic_payment_methods": {"enabled": True},
        }
        if request.payment_method:
            params.update(payment_method=request.payment_method, confirm=True)
            if request.return_url:
                params["return_url"] = request.return_url
        return self._call(lambda: self.client.v1.payment_intents.create(
            params, options={"idempotency_key": request.idempotency_key}))

    def confirm(self, intent_id: str, *, payment_method: str | None, authentication: str | None,
                return_url: str | None) -> IntentState:
        params: dict[str, Any] = {}
        if payment_method:
            params["payment_method"] = payment_method
        if return_url:
            params["return_url"] = return_url
        return self._call(lambda: self.client.v1.payment_intents.confirm(intent_id, params))

    def retrieve(self, intent_id: str) -> IntentState:
        return self._call(lambda: self.client.v1.payment_intents.retrieve(intent_id))

    def cancel(self, intent_id: str) -> IntentState:
        return self._call(lambda: self.client.v1.payment_intents.cancel(intent_id))

    def _call(self, request) -> IntentState:
        try:
            return self._state(request())
        except stripe.CardError as error:
            # A decline answers the confirm with an error, but the intent lives on.
            intent = _get(error.error, "payment_intent") if error.error else None
            if intent:
                return self._state(intent, failure=error.user_message or str(error))
            raise PaymentDeclined(error.user_message or "the card was declined", field="payment_method") from error
        except stripe.InvalidRequestError as error:
            raise PaymentDeclined(error.user_message or str(error), field=error.param or "payment_method") from error
        except stripe.StripeError as error:
            log.warning("Stripe call failed: %s", error)
            raise ProviderUnavailable(f"Stripe did not answer: {type(error).__name__}") from error

    @staticmethod
    def _state(intent: Any, failure: str | None = None) -> IntentState:
        last_error = _get(intent, "last_payment_error")
        next_action = _get(intent, "next_action")
        return IntentState(
            intent_id=intent["id"], status=_STATUS.get(intent["status"], intent["status"]), amount=intent["amount"],
            currency=str(intent["currency"]).upper(), amount_received=_get(intent, "amount_received", 0),
            client_secret=_get(intent, "client_secret"),
            next_action=_plain(next_action) if next_action else None,
            failure=failure or (_get(last_error, "message") if last_error else None),
        )

    # --- refunds --------------------------------------------------------------------------
    def refund(self, intent_id: str, amount: int, *, idempotency_key: str, metadata: Mapping[str, str]) -> RefundResult:
        params = {"payment_intent": intent_id, "amount": amount, "metadata": dict(metadata)}
        try:
            refund = self.client.v1.refunds.create(params, options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError as error:
            return RefundResult(refund_id="", status="failed", amount=amount, failure=error.user_message or str(error))
        except stripe.StripeError as error:
            log.warning("Stripe refund failed: %s", error)
            raise ProviderUnavailable(f"Stripe did not answer: {type(error).__name__}") from error
        status = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}.get(refund["status"], "pending")
        return RefundResult(refund_id=refund["id"], status=status, amount=refund["amount"],
                            failure=_get(refund, "failure_reason"))

    # --- webhooks -------------------------------------------------------------------------
    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        if not self.webhook_secret:
            raise InvalidWebhook("no Stripe webhook secret is configured (TRAFI_STRIPE_WEBHOOK_SECRET)")
        signature = headers.get("stripe-signature")
        if not signature:
            raise InvalidWebhook("the Stripe-Signature header is missing")
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.webhook_secret, tolerance=self.tolerance_s)
        except stripe.SignatureVerificationError as error:
            raise InvalidWebhook(f"signature check failed: {error.user_message or error}") from error
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidWebhook(f"the body is not a Stripe event: {error}") from error
        try:
            return self._read_event(event)
        except (KeyError, TypeError, AttributeError) as error:
            raise InvalidWebhook(f"the Stripe event lacks {error}") from error

    @staticmethod
    def _read_event(event: Any) -> ProviderEvent:
        kind_of, obj = event["type"], event["data"]["object"]
        base = dict(event_id=event["id"], type=kind_of, created=int(_get(event, "created", 0)))
        if kind_of in _INTENT_EVENTS:
            status = _STATUS.get(obj["status"], obj["status"])
            last_error = _get(obj, "last_payment_error")
            failure = (_get(last_error, "message") or _get(last_error, "code") or "payment failed") \
                if kind_of == "payment_intent.payment_failed" else None
            metadata = _get(obj, "metadata", {})
            attempt = str(_get(metadata, "trafi_attempt", ""))
            return ProviderEvent(kind="intent", intent_id=obj["id"], status=status,
                                 amount_received=_get(obj, "amount_received", 0), failure=failure,
                                 order_hint=_get(metadata, "trafi_order_id"),
                                 attempt_hint=int(attempt) if attempt.isdigit() else None, **base)
        if kind_of == "charge.refunded":
            refunds = tuple(
                {"id": r["id"], "amount": r["amount"], "status": r["status"],
                 "trafi_refund_id": _get(_get(r, "metadata", {}), "trafi_refund_id")}
                for r in _get(_get(obj, "refunds", {}), "data", [])
            )
            # A refunded charge was paid: carrying that makes the report complete on its own,
            # should it overtake the payment_intent.succeeded it follows.
            paid = bool(_get(obj, "paid")) or _get(obj, "status") == "succeeded"
            return ProviderEvent(kind="refund", intent_id=_get(obj, "payment_intent"),
                                 status="succeeded" if paid else None,
                                 amount_received=_get(obj, "amount_captured", 0) if paid else 0,
                                 amount_refunded=_get(obj, "amount_refunded", 0), refunds=refunds, **base)
        if kind_of == "charge.dispute.created":
            return ProviderEvent(kind="dispute", intent_id=_get(obj, "payment_intent"), dispute_id=obj["id"],
                                 amount=_get(obj, "amount", 0), reason=str(_get(obj, "reason", "")), **base)
        return ProviderEvent(kind="ignored", **base)
