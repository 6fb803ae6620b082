"""Customer list: one row per customer (account or guest) with their ordering at a glance.

Serves the admin customer list (newest first, keyset pagination, exact e-mail
lookup) and a customer's summary page. `orders_count` and `total_spent` count
orders as placed — what was ordered, before any cancellation or refund — in the
currency of those orders (the store's: it cannot change once products exist).
"""

from __future__ import annotations

from domain.customer import Customer
from domain.order import Order
from projections.projection import Projection, handles
from projections.read_models.timestamps import utc_text


def _email(value) -> str | None:
    # Lower-case, as the lookup matches; None once the subject's key is destroyed (crypto-shredding).
    return value.lower() if isinstance(value, str) else None


class CustomerList(Projection):
    name = "customer_list"
    tables = ("rm_customers",)

    def setup(self, tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS rm_customers ("
            "customer_id TEXT PRIMARY KEY, store_id TEXT NOT NULL, email TEXT, is_guest INTEGER NOT NULL, "
            "registered_at TEXT NOT NULL, updated_at TEXT NOT NULL, address_count INTEGER NOT NULL, "
            "orders_count INTEGER NOT NULL, total_spent BIGINT NOT NULL, currency TEXT, last_order_at TEXT)"
        )
        # The list is "this store, newest first"; the e-mail lookup is exact (one e-mail, one customer).
        tx.execute(
            "CREATE INDEX IF NOT EXISTS rm_customers_store_registered "
            "ON rm_customers (store_id, registered_at, customer_id)"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS rm_customers_store_email ON rm_customers (store_id, email)")

    @handles(Customer.Created)
    def registered(self, tx, event) -> None:
        at = utc_text(event.timestamp)
        tx.insert("rm_customers", {
            "customer_id": str(event.originator_id), "store_id": str(event.store_id),
            "email": _email(event.email.value), "is_guest": int(event.password_hash is None),
            "registered_at": at, "updated_at": at, "address_count": 0, "orders_count": 0, "total_spent": 0,
            "currency": None, "last_order_at": None,
        })

    @handles(Customer.PasswordSet)
    def password_set(self, tx, event) -> None:
        self._update(tx, event.originator_id, event, set={"is_guest": 0})

    @handles(Customer.AddressAdded)
    def address_added(self, tx, event) -> None:
        self._update(tx, event.originator_id, event, add={"address_count": 1})

    @handles(Customer.AddressRemoved)
    def address_removed(self, tx, event) -> None:
        self._update(tx, event.originator_id, event, add={"address_count": -1})

    @handles(Order.Created)
    def order_placed(self, tx, event) -> None:
        # Checkout saves a first-time buyer's Customer before the Order, so the row is there.
        if event.customer_id is None:
            return
        self._update(
            tx, event.customer_id, event,
            set={"currency": event.currency, "last_order_at": utc_text(event.timestamp)},
            add={"orders_count": 1, "total_spent": event.totals["total"]},
        )

    @staticmethod
    def _update(tx, customer_id, event, *, set: dict | None = None, add: dict | None = None) -> None:
        tx.update(
            "rm_customers", {"customer_id": str(customer_id)},
            set={**(set or {}), "updated_at": utc_text(event.timestamp)}, add=add,
        )
