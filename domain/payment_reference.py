"""PaymentReference: which order a provider's payment intent belongs to.

Webhooks speak of the provider's ids (a Stripe PaymentIntent, a dispute's charge),
never of our orders. The reference is saved in the same transaction as the order's
PaymentStarted, under the id uuid5(store, "payment:<provider>:<intent id>"), so a
webhook — however early it arrives after the intent exists — finds its order with
one consistent read, and only within the store it was addressed to.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


class PaymentReference(Aggregate):
    TOPIC = "trafi.payment_reference.v1"

    @event("Created", topic="trafi.payment_reference.created.v1")
    def __init__(self, id: UUID, store_id: UUID, order_id: UUID, provider: str, intent_id: str):
        self.store_id = store_id
        self.order_id = order_id
        self.provider = provider
        self.intent_id = intent_id
