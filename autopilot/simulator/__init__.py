"""A traffic simulator: visitors with known funnel rates, and problems planted on purpose.

It drives the diagnosis tests (does it find the planted problem? does it leave a healthy store
alone?) and the demo. Two outputs of the same simulated days:
* `Simulation.events(...)`: storefront events as POST /v1/events takes them;
* `load_into(con, simulation)`: the visitor-days and orders straight into a DuckDB warehouse,
  as Arrow tables, so a diagnosis can be tested over many seeds in seconds.

Deterministic: a profile, a seed and a day always give the same visitors.
"""

from autopilot.simulator.clock import AcceleratedClock, Clock, FixedClock, SystemClock
from autopilot.simulator.profile import Effect, PlantedProblem, StoreProfile
from autopilot.simulator.simulation import DayVisitors, Simulation
from autopilot.simulator.warehouse import load_into

__all__ = [
    "AcceleratedClock", "Clock", "DayVisitors", "Effect", "FixedClock", "PlantedProblem", "Simulation", "StoreProfile",
    "SystemClock", "load_into",
]
