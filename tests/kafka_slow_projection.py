"""The order list, slow on purpose, so a kill -9 of a Kafka-fed worker lands inside a batch.

Registered for a worker process with TRAFI_PROJECTIONS=tests.kafka_slow_projection:SlowOrderList
and run as `trafi projections run slow_order_list --source kafka`.
"""

from __future__ import annotations

import time

from projections.read_models.orders import OrderList


class SlowOrderList(OrderList):
    name = "slow_order_list"

    def apply_batch(self, tx, notifications, mapper):
        for notification in notifications:
            self.apply(tx, mapper.to_domain_event(notification))
            time.sleep(0.003)  # slower than the traffic: a batch is always in flight
