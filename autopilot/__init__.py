"""The profit autopilot: instrumentation, warehouse, diagnosis, flags, statistics, deciders."""
