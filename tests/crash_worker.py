"""A projection worker that is slow on purpose, so a kill -9 lands inside a batch transaction.

Run as `python -m tests.crash_worker` with the TRAFI_* environment of the store under test.
It is the production ProjectionWorker; only the order list's batches take longer.
"""

from __future__ import annotations

import time

from commands.application import TrafiApplication
from commands.config import EventStoreConfig
from projections.read_models.orders import OrderList
from projections.views import ViewStore
from projections.worker import ProjectionWorker


class SlowOrderList(OrderList):
    def apply_batch(self, tx, notifications, mapper):
        for notification in notifications:
            self.apply(tx, mapper.to_domain_event(notification))
            time.sleep(0.01)  # slower than the traffic: always inside a batch


if __name__ == "__main__":
    config = EventStoreConfig.from_env()
    app = TrafiApplication(config)
    ProjectionWorker(app, ViewStore(config), [SlowOrderList()], batch_size=25, poll_interval_s=0.01).run()
