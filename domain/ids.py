"""Deterministic identifiers: uuid5 of the store and a natural key.

Creating the same thing twice yields the same id, so a retried creation
collides with the first one in the event store instead of duplicating it.
"""

from __future__ import annotations

from uuid import UUID, uuid5

TRAFI_NAMESPACE = UUID("5b6f8a70-2f4e-4c59-9a55-7a1f0c3d2e10")


def store_id(slug: str) -> UUID:
    return uuid5(TRAFI_NAMESPACE, f"store:{slug}")


def _scoped(store: UUID, kind: str, key: str) -> UUID:
    return uuid5(store, f"{kind}:{key}")


def product_id(store: UUID, handle: str) -> UUID:
    return _scoped(store, "product", handle)


def stock_item_id(store: UUID, sku: str) -> UUID:
    return _scoped(store, "stock", sku)


def customer_id(store: UUID, email: str) -> UUID:
    # Same email → same customer, which is what makes a returning guest recognisable.
    return _scoped(store, "customer", email.strip().lower())


def order_id(store: UUID, cart: UUID) -> UUID:
    # A cart checks out at most once: a retried checkout finds the same order.
    return _scoped(store, "order", str(cart))


def idempotency_id(store: UUID, key: str) -> UUID:
    return _scoped(store, "idempotency", key)


def admin_user_id(store: UUID, email: str) -> UUID:
    # Same e-mail → same admin user: a second invitation collides instead of duplicating.
    return _scoped(store, "admin_user", email.strip().lower())


def wishlist_id(store: UUID, customer: UUID) -> UUID:
    # One wishlist per customer: its id follows from the customer, so the first add creates it.
    return _scoped(store, "wishlist", str(customer))


def payment_reference_id(store: UUID, provider: str, intent_id: str) -> UUID:
    # A provider's webhook names its own intent id; this finds our order from it in one read.
    return _scoped(store, "payment", f"{provider}:{intent_id}")
