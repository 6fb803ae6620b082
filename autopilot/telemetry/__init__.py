"""Storefront instrumentation: event schemas, the durable telemetry log, event-flow health."""
