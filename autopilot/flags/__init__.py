"""Feature flags of the profit autopilot (§4): deterministic, stateless visitor assignment.

`assignment` is pure (stdlib only): the same (store, flag, visitor) gets the same variant on every
process and every machine, so the storefront can evaluate flags in-process without a network call.
"""
