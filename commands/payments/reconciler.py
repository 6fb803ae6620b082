"""Pending refunds, retried until the provider has answered.

A refund is recorded as requested before the provider is called; if the provider
cannot be reached (or the process dies in between) it stays pending. This loop asks
the order read model which refunds are still pending and settles them through the
payment service, with the refund's own idempotency key, so the provider pays it
out exactly once however many times it is retried.
"""

from __future__ import annotations

import logging
import threading
from uuid import UUID

from commands.payments.service import PaymentService
from projections.views import ViewStore

log = logging.getLogger("trafi.payments")


def orders_with_pending_refunds(views: ViewStore, limit: int = 500) -> list[UUID]:
    with views.read() as tx:
        rows = tx.execute(
            "SELECT DISTINCT order_id FROM rm_order_refunds WHERE status = 'pending' ORDER BY order_id LIMIT %s",
            (limit,),
        ).fetchall()
    return [UUID(row[0]) for row in rows]


def settle_once(service: PaymentService, views: ViewStore) -> int:
    return service.settle_pending_refunds(orders_with_pending_refunds(views))


class RefundReconciler:
    """A daemon thread running `settle_once` every `interval_s` (the embedded API process)."""

    def __init__(self, service: PaymentService, views: ViewStore, interval_s: float = 60.0):
        self.service = service
        self.views = views
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RefundReconciler:
        self._thread = threading.Thread(target=self._run, name="trafi-refunds", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                settled = settle_once(self.service, self.views)
                if settled:
                    log.info("settled %d pending refund(s)", settled)
            except Exception:  # keep retrying: one bad order must not stop the others' refunds
                log.exception("pending refunds could not be settled")
