"""Deterministic, stateless flag assignment (§4).

Bucketing
    ``bucket(store_id, flag_key, visitor_id)`` is the first 8 bytes of
    SHA-256("{store_id}:{flag_key}:{visitor_id}", UTF-8) read as a big-endian unsigned integer,
    mod 10_000. SHA-256 is stable across processes and Python versions (unlike ``hash()``, which is
    salted per process), and 2**64 mod 10_000 leaves a modulo bias below 1e-15: negligible.
    Percentages therefore have a resolution of 0.01 % (one bucket).

Global holdout
    A visitor is in the global holdout when ``bucket(store_id, "global-holdout", visitor_id)`` falls
    in the lowest ``holdout_pct`` % of buckets. Because it is its own hash, it is independent of every
    flag's bucket. Global-holdout visitors never receive any ChangeSet: they measure the cumulative
    effect of the autopilot itself.

Arms of one flag, laid out on the flag's bucket line [0, 10_000)::

    [0, H)        control    (the ChangeSet's holdout %; fixed whatever the ramp)
    [H, H + R)    treatment  (the rollout %; grows 1 → 5 → 10 → 25 → 50 by extending to the right)
    [H + R, ...)  off        (not in the experiment yet)

Growing R only appends buckets, so a treated visitor stays treated (monotone ramp) and control never
changes, which keeps the expected treatment/control ratio simply R / H. Both shares are of the
visitors outside the global holdout; among all visitors they are scaled by (1 - global holdout).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple
from types import MappingProxyType

BUCKET_COUNT = 10_000
BUCKETS_PER_PCT = BUCKET_COUNT // 100  # 0.01 % resolution
GLOBAL_HOLDOUT_KEY = "global-holdout"  # reserved: a flag with this key would share the holdout's hash
DEFAULT_GLOBAL_HOLDOUT_PCT = 5.0
DEFAULT_EXPOSURE_CACHE_SIZE = 100_000
KEY_SEPARATOR = ":"


class Variant(StrEnum):
    TREATMENT = "treatment"
    CONTROL = "control"
    OFF = "off"


class Reason(StrEnum):
    ROLLOUT = "rollout"  # treatment: the bucket is inside the rollout %
    HOLDOUT = "holdout"  # control: the bucket is inside the ChangeSet's holdout %
    NOT_IN_ROLLOUT = "not_in_rollout"  # off: the ramp has not reached this bucket (yet)
    GLOBAL_HOLDOUT = "global_holdout"  # off: the visitor is in the global holdout


def bucket(store_id: str, flag_key: str, visitor_id: str) -> int:
    """The visitor's bucket in [0, 10_000) for this store and flag (see module docstring)."""
    key = f"{store_id}{KEY_SEPARATOR}{flag_key}{KEY_SEPARATOR}{visitor_id}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % BUCKET_COUNT


def pct_to_buckets(pct: float) -> int:
    """Number of buckets covering `pct` %; `pct` must be in [0, 100] with at most 0.01 % resolution."""
    if isinstance(pct, bool) or not isinstance(pct, int | float) or not math.isfinite(pct):
        raise ValueError(f"percentage must be a finite number, got {pct!r}")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentage must be in [0, 100], got {pct!r}")
    buckets = round(pct * BUCKETS_PER_PCT)
    # Reject rather than round silently: 0.005 % would otherwise quietly become 0 % or 0.01 %.
    if not math.isclose(pct * BUCKETS_PER_PCT, buckets, abs_tol=1e-6):
        raise ValueError(f"percentage resolution is 0.01 %, got {pct!r}")
    return buckets


def in_global_holdout(store_id: str, visitor_id: str, holdout_pct: float = DEFAULT_GLOBAL_HOLDOUT_PCT) -> bool:
    """Whether the visitor is in the store's global holdout (never receives any ChangeSet)."""
    return bucket(store_id, GLOBAL_HOLDOUT_KEY, visitor_id) < pct_to_buckets(holdout_pct)


@dataclass(frozen=True, slots=True)
class FlagRule:
    """One ChangeSet's flag: `rollout_pct` % treated, `holdout_pct` % control, the rest off."""

    flag_key: str
    rollout_pct: float
    holdout_pct: float
    # Bucket boundaries, precomputed once because evaluation is on the storefront's hot path.
    control_end: int = field(init=False, repr=False, compare=False)
    treatment_end: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.flag_key, str) or not self.flag_key.strip():
            raise ValueError("flag_key must be a non-empty string")
        if KEY_SEPARATOR in self.flag_key:
            # "a:b" would make (store "s", flag "a:b") hash like (store "s:a", flag "b").
            raise ValueError(f"flag_key must not contain {KEY_SEPARATOR!r}: {self.flag_key!r}")
        if self.flag_key == GLOBAL_HOLDOUT_KEY:
            raise ValueError(f"flag_key {GLOBAL_HOLDOUT_KEY!r} is reserved for the global holdout")
        control = pct_to_buckets(self.holdout_pct)
        treatment = pct_to_buckets(self.rollout_pct)
        if control + treatment > BUCKET_COUNT:
            raise ValueError(
                f"rollout_pct + holdout_pct must be ≤ 100, got {self.rollout_pct} + {self.holdout_pct}"
            )
        object.__setattr__(self, "control_end", control)
        object.__setattr__(self, "treatment_end", control + treatment)


class Assignment(NamedTuple):
    # A named tuple rather than a frozen dataclass: built once per flag per evaluation on the
    # storefront's hot path, and a tuple is several times cheaper to make.
    variant: Variant
    reason: Reason
    bucket: int  # the flag bucket, also for global-holdout visitors, so assignments can be audited


TREATMENT, CONTROL, OFF = Variant.TREATMENT, Variant.CONTROL, Variant.OFF
ROLLOUT, HOLDOUT, NOT_IN_ROLLOUT, GLOBAL_HOLDOUT = Reason.ROLLOUT, Reason.HOLDOUT, Reason.NOT_IN_ROLLOUT, Reason.GLOBAL_HOLDOUT


def assign_bucket(rule: FlagRule, flag_bucket: int, globally_held_out: bool) -> Assignment:
    """The arm of an already computed bucket: the pure core shared by `assign` and `FlagEvaluator`."""
    if globally_held_out:
        return Assignment(Variant.OFF, Reason.GLOBAL_HOLDOUT, flag_bucket)
    if flag_bucket < rule.control_end:
        return Assignment(Variant.CONTROL, Reason.HOLDOUT, flag_bucket)
    if flag_bucket < rule.treatment_end:
        return Assignment(Variant.TREATMENT, Reason.ROLLOUT, flag_bucket)
    return Assignment(Variant.OFF, Reason.NOT_IN_ROLLOUT, flag_bucket)


def assign(
    rule: FlagRule, store_id: str, visitor_id: str, *, global_holdout_pct: float = DEFAULT_GLOBAL_HOLDOUT_PCT
) -> Assignment:
    """Which variant of `rule` this visitor of this store gets."""
    return assign_bucket(
        rule,
        bucket(store_id, rule.flag_key, visitor_id),
        in_global_holdout(store_id, visitor_id, global_holdout_pct),
    )


class Exposure(NamedTuple):
    store_id: str
    flag_key: str
    visitor_id: str
    assignment: Assignment


def is_exposure(assignment: Assignment) -> bool:
    """Whether an assignment is recorded as an exposure.

    Everything except "off, not in rollout": that is the only assignment that changes as the ramp
    grows, so recording it would let de-duplication swallow the visitor's later treatment exposure.
    Global-holdout visitors are recorded so the warehouse can compare them with everyone else.
    """
    return assignment.reason is not Reason.NOT_IN_ROLLOUT


def checked_rules(rules: Mapping[str, FlagRule]) -> Mapping[str, FlagRule]:
    """A read-only copy of `rules`, each registered under its own flag_key."""
    for key, rule in rules.items():
        if key != rule.flag_key:
            raise ValueError(f"rule registered under {key!r} has flag_key {rule.flag_key!r}")
    return MappingProxyType(dict(rules))


class FlagEvaluator:
    """In-process evaluation of a store's flags for one visitor, with first-exposure reporting.

    `on_first_exposure` is called once per (store, flag, visitor), de-duplicated in memory by a
    bounded LRU of `exposure_cache_size` keys. This is only a best-effort front that keeps the event
    volume down: evictions, restarts and other processes repeat exposures, and the durable
    de-duplication is the warehouse's primary key on (store, flag, visitor). If the callback raises,
    the key is forgotten so the next evaluation reports it again, and the error propagates.
    """

    def __init__(
        self,
        rules: Mapping[str, FlagRule],
        *,
        global_holdout_pct: float = DEFAULT_GLOBAL_HOLDOUT_PCT,
        on_first_exposure: Callable[[Exposure], None] | None = None,
        exposure_cache_size: int = DEFAULT_EXPOSURE_CACHE_SIZE,
    ) -> None:
        if isinstance(exposure_cache_size, bool) or not isinstance(exposure_cache_size, int) or exposure_cache_size < 1:
            raise ValueError(f"exposure_cache_size must be a positive integer, got {exposure_cache_size!r}")
        self._holdout_buckets = pct_to_buckets(global_holdout_pct)  # validated once, not per evaluation
        self.rules: Mapping[str, FlagRule] = checked_rules(rules)
        self.global_holdout_pct = global_holdout_pct
        self.on_first_exposure = on_first_exposure
        self.exposure_cache_size = exposure_cache_size
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._lock = threading.Lock()  # storefront workers may share one evaluator across threads

    def replace_rules(self, rules: Mapping[str, FlagRule]) -> None:
        """Swap in new rules (e.g. the next ramp stage) while keeping the exposure cache.

        One attribute assignment, so concurrent `evaluate` calls see either the old or the new rules.
        """
        self.rules = checked_rules(rules)

    def evaluate(self, store_id: str, visitor_id: str) -> dict[str, Assignment]:
        """Every flag's assignment for this visitor, reporting first exposures."""
        assignments = self.assignments(store_id, visitor_id)
        if self.on_first_exposure is not None:
            self._report_first_exposures(store_id, visitor_id, assignments)
        return assignments

    def assignments(self, store_id: str, visitor_id: str) -> dict[str, Assignment]:
        """Every flag's assignment for this visitor (nothing reported).

        `bucket` and `assign_bucket` inlined: this is the storefront's hot path (the same arithmetic,
        tests/unit/test_flag_assignment.py checks they agree).
        """
        rules = self.rules  # one read, so a concurrent replace_rules cannot mix two rule sets
        prefix, suffix = f"{store_id}{KEY_SEPARATOR}", f"{KEY_SEPARATOR}{visitor_id}"
        sha256, from_bytes = hashlib.sha256, int.from_bytes
        held_out = (from_bytes(sha256(f"{prefix}{GLOBAL_HOLDOUT_KEY}{suffix}".encode()).digest()[:8], "big")
                    % BUCKET_COUNT) < self._holdout_buckets
        found = {}
        for key, rule in rules.items():
            flag_bucket = from_bytes(sha256(f"{prefix}{key}{suffix}".encode()).digest()[:8], "big") % BUCKET_COUNT
            if held_out:
                found[key] = Assignment(OFF, GLOBAL_HOLDOUT, flag_bucket)
            elif flag_bucket < rule.control_end:
                found[key] = Assignment(CONTROL, HOLDOUT, flag_bucket)
            elif flag_bucket < rule.treatment_end:
                found[key] = Assignment(TREATMENT, ROLLOUT, flag_bucket)
            else:
                found[key] = Assignment(OFF, NOT_IN_ROLLOUT, flag_bucket)
        return found

    def first_exposures(self, store_id: str, visitor_id: str,
                        assignments: dict[str, Assignment]) -> list[Exposure]:
        """The exposures among `assignments` not seen before, now remembered: for a caller that records
        them all at once (one write per request). Should the write fail, `forget` them.

        The LRU bookkeeping is inlined (this runs for every evaluation on the storefront's hot path)."""
        seen, size, new = self._seen, self.exposure_cache_size, []
        with self._lock:
            for key, assignment in assignments.items():
                if assignment.reason is NOT_IN_ROLLOUT:  # is_exposure, inlined
                    continue
                exposure_key = (store_id, key, visitor_id)
                if exposure_key in seen:
                    seen.move_to_end(exposure_key)
                    continue
                seen[exposure_key] = None
                if len(seen) > size:
                    seen.popitem(last=False)
                new.append(Exposure(store_id, key, visitor_id, assignment))
        return new

    def forget(self, exposures: list[Exposure]) -> None:
        with self._lock:
            for exposure in exposures:
                self._seen.pop((exposure.store_id, exposure.flag_key, exposure.visitor_id), None)

    def _report_first_exposures(self, store_id: str, visitor_id: str, assignments: dict[str, Assignment]) -> None:
        new = self.first_exposures(store_id, visitor_id, assignments)
        # The callback runs outside the lock: it may be slow (I/O) and must not block other threads.
        for position, exposure in enumerate(new):
            try:
                self.on_first_exposure(exposure)
            except BaseException:
                self.forget(new[position:])
                raise
