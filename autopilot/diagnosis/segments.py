"""Segments: who a finding is about — the whole store, one dimension's value, or a 2-way combination.

A segment is a set of (dimension, value) conditions; the empty set is the whole store. Two
segments overlap unless they disagree on some dimension (mobile × FR and mobile share visitors;
mobile and desktop do not).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

DIMENSIONS = ("device", "country", "traffic_source", "visitor_type")  # visitor_type: new | returning
MAX_DEPTH = 2  # single dimensions and 2-way combinations
_LABELS = {"device": "{}", "country": "{}", "traffic_source": "source {}", "visitor_type": "{} visitors"}


@dataclass(frozen=True, order=True)
class Segment:
    conditions: tuple[tuple[str, str], ...] = ()  # in DIMENSIONS order

    @classmethod
    def of(cls, **conditions: str) -> Segment:
        unknown = set(conditions) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"unknown segment dimension(s) {sorted(unknown)}; known: {DIMENSIONS}")
        return cls(tuple((d, str(conditions[d])) for d in DIMENSIONS if d in conditions))

    @classmethod
    def from_dict(cls, conditions: dict) -> Segment:
        return cls.of(**conditions)

    @property
    def depth(self) -> int:
        return len(self.conditions)

    @property
    def is_store(self) -> bool:
        return not self.conditions

    def as_dict(self) -> dict[str, str]:
        return dict(self.conditions)

    @property
    def key(self) -> str:
        """Stable text form: `store`, `device=mobile`, `device=mobile&country=FR`."""
        return "&".join(f"{d}={v}" for d, v in self.conditions) or "store"

    @property
    def label(self) -> str:
        """For people: `mobile × FR`, `new visitors`, `source newsletter`, `whole store`."""
        return " × ".join(_LABELS[d].format(v) for d, v in self.conditions) or "whole store"

    def overlaps(self, other: Segment) -> bool:
        mine = dict(self.conditions)
        return all(mine.get(d, v) == v for d, v in other.conditions)

    def value(self, dimension: str) -> str | None:
        return dict(self.conditions).get(dimension)


def grouping_sets(max_depth: int = MAX_DEPTH) -> list[tuple[str, ...]]:
    """Every combination of dimensions a diagnosis breaks the funnel down by, store first."""
    return [combo for depth in range(max_depth + 1) for combo in combinations(DIMENSIONS, depth)]
