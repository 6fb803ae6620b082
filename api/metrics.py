"""Prometheus metrics: per-route latency, command retries and conflicts, projection (and Kafka relay) lag.

Each app has its own registry (tests build many apps in one process). Counters the
command bus already keeps and projection lag are read when scraped, by a collector,
so the hot path pays for nothing but the latency histogram.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Collector:
    def __init__(self, bus_stats: Callable[[], object], projection_lag: Callable[[], list], rate_limited: Callable[[], int]):
        self.bus_stats = bus_stats
        self.projection_lag = projection_lag
        self.rate_limited = rate_limited

    def collect(self):
        stats = self.bus_stats()
        yield CounterMetricFamily("trafi_commands", "Commands executed by this process", value=stats.commands)
        yield CounterMetricFamily(
            "trafi_command_retries", "Command attempts retried after losing a race on an aggregate version",
            value=stats.retries,
        )
        yield CounterMetricFamily(
            "trafi_command_conflicts", "Commands given up with 409 after every retry lost", value=stats.conflicts,
        )
        yield CounterMetricFamily("trafi_rate_limited", "Requests refused with 429", value=self.rate_limited())
        events = GaugeMetricFamily("trafi_projection_lag_events", "Events a projection has not applied yet",
                                   labels=["projection"])
        seconds = GaugeMetricFamily("trafi_projection_lag_seconds", "Age of the oldest event not applied yet",
                                    labels=["projection"])
        copies = CounterMetricFamily("trafi_kafka_duplicates_dropped", "Copies of events a Kafka-fed projection "
                                     "dropped by (aggregate id, version)", labels=["projection"])
        dead = CounterMetricFamily("trafi_kafka_dead_letters", "Messages a Kafka-fed projection parked in the "
                                   "dead-letter topic", labels=["projection"])
        for status in self.projection_lag():
            events.add_metric([status.name], status.lag_events)
            seconds.add_metric([status.name], status.lag_seconds or 0.0)
            if status.source == "kafka":
                copies.add_metric([status.name], status.duplicates)
                dead.add_metric([status.name], status.dead_letters)
        yield events
        yield seconds
        yield copies
        yield dead


class _EventFlowCollector:
    """Storefront event flow per store, read from the telemetry database when scraped: the numbers
    survive restarts and are the same on every API process (take max(), not sum(), across them)."""

    def __init__(self, totals: Callable[[], list]):
        self.totals = totals

    def collect(self):
        families = {
            "accepted": CounterMetricFamily("trafi_storefront_events_accepted", "Storefront events stored",
                                            labels=["store"]),
            "duplicates": CounterMetricFamily("trafi_storefront_events_duplicates", "Storefront events sent again "
                                              "(same event_id) and not stored twice", labels=["store"]),
            "rejected": CounterMetricFamily("trafi_storefront_events_rejected", "Storefront events refused by "
                                            "validation (schema rejects)", labels=["store"]),
            "refused_batches": CounterMetricFamily("trafi_storefront_event_batches_refused", "POST /v1/events "
                                                   "requests refused as a whole (not JSON, not a batch)",
                                                   labels=["store"]),
        }
        last = GaugeMetricFamily("trafi_storefront_events_last_accepted_timestamp_seconds", "When the store's "
                                 "last storefront event was stored (alert on time() minus this: a delivery gap)",
                                 labels=["store"])
        for row in self.totals():
            for name, family in families.items():
                family.add_metric([row.store_id], getattr(row, name))
            if row.last_accepted_at_us is not None:
                last.add_metric([row.store_id], row.last_accepted_at_us / 1e6)
        yield from families.values()
        yield last


class ApiMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "trafi_http_request_duration_seconds", "Time to answer a request, by route template",
            ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route, str(status)).observe(seconds)

    def watch(self, *, bus_stats, projection_lag, rate_limited) -> None:
        self.registry.register(_Collector(bus_stats, projection_lag, rate_limited))

    def watch_event_flow(self, totals: Callable[[], list]) -> None:
        """`totals()`: the telemetry log's per-store counters (autopilot/telemetry/log.py FlowTotals)."""
        self.registry.register(_EventFlowCollector(totals))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
