"""Clocks the simulator runs on: the real one, a fixed one for tests, an accelerated one for the demo."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """Stands still until told to move."""

    def __init__(self, moment: datetime):
        if moment.tzinfo is None:
            raise ValueError("a clock's moment carries a time zone")
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


class AcceleratedClock:
    """Simulated time that runs `factor` times faster than the real clock, from `start`.

    factor 1440: a simulated day per real minute.
    """

    def __init__(self, start: datetime, factor: float, *, real: Callable[[], float] = time.monotonic):
        if start.tzinfo is None:
            raise ValueError("a clock's start carries a time zone")
        if factor <= 0:
            raise ValueError("factor must be positive")
        self.start, self.factor, self._real = start, factor, real
        self._origin = real()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._real() - self._origin) * self.factor)
