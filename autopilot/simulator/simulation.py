"""The simulated days: who visits, from where, on what, and how far down the funnel they get.

Everything is vectorised per day (numpy) and seeded by (seed, day) — not by the store id, so a
test gets the same traffic whatever id its store was given — so any day can be produced alone,
in any order, always the same. Returning visitors are visitors first seen on an
earlier simulated day (up to `RETURN_WITHIN_DAYS` before), with the device and country they had
then — which is what makes "returning" mean the same as in the warehouse (first seen before).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterator

import numpy as np

from autopilot.simulator.clock import Clock
from autopilot.simulator.profile import TRANSITION_STEPS, StoreProfile

RETURN_WITHIN_DAYS = 60
_NEW, _RETURNING, _FUNNEL, _ORDERS, _EVENTS = range(5)  # independent random streams of a day


@dataclass(frozen=True)
class DayVisitors:
    """One simulated day, a row per visitor (columns as numpy arrays)."""

    day: date
    visitor_id: np.ndarray  # str
    device: np.ndarray  # str
    country: np.ndarray  # str
    traffic_source: np.ndarray  # str
    is_returning: np.ndarray  # bool
    max_step: np.ndarray  # int8, index into FUNNEL_STEPS
    start_second: np.ndarray  # seconds after midnight (UTC) of the visit's first event

    def __len__(self) -> int:
        return len(self.visitor_id)


@dataclass(frozen=True)
class NewVisitors:
    device: np.ndarray
    country: np.ndarray


def _choice(rng: np.random.Generator, shares: dict, size: int) -> np.ndarray:
    names = np.array(list(shares), dtype=object)
    return names[rng.choice(len(names), size=size, p=np.array(list(shares.values()), dtype=float))]


class Simulation:
    """`days` simulated days ending on `end` (inclusive) for one store profile and seed."""

    def __init__(self, profile: StoreProfile, *, seed: int, end: date, days: int):
        if days < 1:
            raise ValueError("simulate at least one day")
        self.profile, self.seed, self.end, self.days = profile, seed, end, days
        self.start = end - timedelta(days=days - 1)
        self._new_visitors = lru_cache(maxsize=RETURN_WITHIN_DAYS + 8)(self._new_visitors_of)

    @classmethod
    def up_to(cls, profile: StoreProfile, clock: Clock, *, seed: int, days: int) -> Simulation:
        """The `days` whole days before the clock's today."""
        return cls(profile, seed=seed, end=clock.now().astimezone(timezone.utc).date() - timedelta(days=1), days=days)

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def _rng(self, day: date, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, day.toordinal(), stream])

    def _volume(self, day: date) -> float:
        weekend = self.profile.weekend_factor if day.weekday() >= 5 else 1.0
        return self.profile.visitors_per_day * weekend

    def _new_visitors_of(self, day: date) -> NewVisitors:
        rng = self._rng(day, _NEW)
        count = int(rng.poisson(self._volume(day) * (1.0 - self.profile.returning_share)))
        return NewVisitors(_choice(rng, self.profile.devices, count), _choice(rng, self.profile.countries, count))

    def visitors(self, day: date) -> DayVisitors:
        """Who came on `day` and how far they got."""
        if not self.start <= day <= self.end:
            raise ValueError(f"{day} is outside the simulated days {self.start}..{self.end}")
        new = self._new_visitors(day)
        n_new = len(new.device)
        ids = [f"v-{day.toordinal()}-{i}" for i in range(n_new)]
        device, country = list(new.device), list(new.country)
        returning = [False] * n_new
        for first_day, index in self._returning_picks(day):
            earlier = self._new_visitors(first_day)
            ids.append(f"v-{first_day.toordinal()}-{index}")
            device.append(earlier.device[index])
            country.append(earlier.country[index])
            returning.append(True)
        is_returning = np.array(returning, dtype=bool)
        rng = self._rng(day, _FUNNEL)
        source = self._sources(rng, is_returning)
        device_a, country_a = np.array(device, dtype=object), np.array(country, dtype=object)
        rates = self._rates(rng, day, device_a, country_a, source, is_returning)
        passed = rng.random(rates.shape) < rates
        max_step = np.cumprod(passed, axis=1).sum(axis=1).astype(np.int8)
        start_second = np.sort(rng.integers(0, 86_400 - 3_600, size=len(ids)))  # time order = row order
        return DayVisitors(day, np.array(ids, dtype=object), device_a, country_a, source, is_returning, max_step,
                           start_second)

    def _returning_picks(self, day: date) -> list[tuple[date, int]]:
        """Earlier visitors back today: (the day they were first seen, their index that day), distinct."""
        first = max(self.start, day - timedelta(days=RETURN_WITHIN_DAYS))
        span = (day - first).days
        if span <= 0:
            return []
        rng = self._rng(day, _RETURNING)
        count = int(rng.poisson(self._volume(day) * self.profile.returning_share))
        picks = set()
        for offset in rng.integers(1, span + 1, size=count):
            first_day = day - timedelta(days=int(offset))
            available = len(self._new_visitors(first_day).device)
            if available:
                picks.add((first_day, int(rng.integers(0, available))))
        return sorted(picks)

    def _sources(self, rng: np.random.Generator, is_returning: np.ndarray) -> np.ndarray:
        # Returning visitors come back more often directly or from the newsletter.
        returning_mix = {s: w * (2.0 if s in ("direct", "newsletter") else 1.0) for s, w in self.profile.sources.items()}
        total = sum(returning_mix.values())
        returning_mix = {s: w / total for s, w in returning_mix.items()}
        source = _choice(rng, self.profile.sources, len(is_returning))
        source[is_returning] = _choice(rng, returning_mix, int(is_returning.sum()))
        return source

    def _rates(self, rng, day, device, country, source, is_returning) -> np.ndarray:
        """Each visitor's conversion at each step: base × standing effects × planted problems × the day's wobble."""
        profile = self.profile
        columns = {"device": device, "country": country, "traffic_source": source,
                   "visitor_type": np.where(is_returning, "returning", "new")}
        wobble = rng.lognormal(0.0, profile.daily_rate_cv, size=len(TRANSITION_STEPS)) if profile.daily_rate_cv else 1.0
        rates = np.tile(np.array([profile.rates[s] for s in TRANSITION_STEPS]) * wobble, (len(device), 1))
        for effect in profile.effects:
            rows = columns[effect.dimension] == effect.value
            rates[rows, TRANSITION_STEPS.index(effect.step)] *= effect.multiplier
        for problem in profile.problems:
            if problem.active_on(day):
                rows = np.ones(len(device), dtype=bool)
                for dimension, value in problem.segment.items():
                    rows &= columns[dimension] == value
                rates[rows, TRANSITION_STEPS.index(problem.step)] *= problem.multiplier
        return np.clip(rates, 0.0, 0.99)

    def orders(self, day: date, visitors: DayVisitors | None = None) -> dict[str, np.ndarray]:
        """An order per visitor who completed the funnel: columns of the warehouse's `orders` table."""
        from autopilot.simulator.orders import orders_of_day

        visitors = visitors or self.visitors(day)
        return orders_of_day(self.profile, visitors, self._rng(day, _ORDERS))

    def events(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[dict]:
        """Storefront events of the simulated days with since <= occurred_at < until, in time order."""
        from autopilot.simulator.events import events_of_day

        since = since or datetime.combine(self.start, time(), timezone.utc)
        until = until or datetime.combine(self.end + timedelta(days=1), time(), timezone.utc)
        day = max(self.start, since.astimezone(timezone.utc).date())
        while day <= self.end and datetime.combine(day, time(), timezone.utc) < until:
            visitors = self.visitors(day)
            orders = self.orders(day, visitors)
            for event in events_of_day(self.profile, visitors, orders, self._rng(day, _EVENTS)):
                if since <= event["_at"] < until:
                    event.pop("_at")
                    yield event
            day += timedelta(days=1)

    def events_until(self, clock: Clock, since: datetime) -> Iterator[dict]:
        """What has happened between `since` and the clock's now: the demo's feed on an accelerated clock."""
        return self.events(since, clock.now())
