"""The commerce domain: aggregates, events, value objects and pure policies. No I/O.

Importing this package imports every aggregate, which registers every event
topic: a process that only reads history can then resolve all of them.
"""

from domain.admin_user import AdminUser
from domain.api_key import ApiKey
from domain.cart import Cart
from domain.changeset import ChangeSet
from domain.customer import Customer
from domain.diagnosis import StoreDiagnosis
from domain.idempotency import IdempotencyRecord
from domain.order import Order
from domain.password_reset import PasswordResetRequest
from domain.payment_reference import PaymentReference
from domain.product import Product
from domain.session import Session
from domain.stock import StockItem
from domain.store import Store
from domain.wishlist import Wishlist
from domain.webhook_endpoint import WebhookEndpoint

AGGREGATES = (Store, Product, StockItem, Customer, Cart, Order, IdempotencyRecord, PasswordResetRequest, Wishlist,
              ApiKey, AdminUser, Session, WebhookEndpoint, PaymentReference, StoreDiagnosis,
              ChangeSet)

__all__ = [
    "AGGREGATES", "Cart", "Customer", "IdempotencyRecord", "Order", "Product", "StockItem", "Store",
    "PasswordResetRequest", "Wishlist", "ApiKey", "AdminUser", "Session", "PaymentReference", "WebhookEndpoint",
    "StoreDiagnosis", "ChangeSet",
]
