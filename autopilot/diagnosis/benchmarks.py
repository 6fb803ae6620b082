"""The reference data file (autopilot/data/funnel_benchmarks.json), loaded and checked once.

The file names its source and says which numbers come from it and which are Trafi's own
wide ranges; this module only gives them types. A malformed file fails at load, loudly,
never halfway through a diagnosis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from autopilot.warehouse.schema import FUNNEL_STEPS

DATA_FILE = Path(__file__).parents[1] / "data" / "funnel_benchmarks.json"
RISKS = ("low", "medium", "high")
METHODS = ("feature_flag", "workflow", "price_change")


@dataclass(frozen=True)
class Range:
    low: float
    typical: float
    high: float

    @classmethod
    def parse(cls, raw: dict, what: str) -> Range:
        value = cls(float(raw["low"]), float(raw["typical"]), float(raw["high"]))
        if not 0.0 <= value.low <= value.typical <= value.high <= 1.0:
            raise ValueError(f"{what}: needs 0 <= low <= typical <= high <= 1, got {raw}")
        return value


@dataclass(frozen=True)
class CauseRule:
    cause: str
    label: str
    weight: float
    weight_origin: str
    playbook: str | None


@dataclass(frozen=True)
class SegmentHint:
    step: str
    dimension: str
    value: str  # "*": any value of the dimension
    cause: str
    factor: float


@dataclass(frozen=True)
class Playbook:
    key: str
    title: str
    method: str
    risk: str
    recovery_share: Range
    margin_cost_rate: float  # share of an order's revenue the playbook gives away (a discount)
    implementation: dict  # flag_key | workflow (+ schedule) | change (+ discount_rate)


@dataclass(frozen=True)
class Benchmarks:
    source: dict
    as_of: str
    steps: dict[str, Range]  # by the step a visitor leaves from: conversion step → next step
    causes: dict[str, tuple[CauseRule, ...]]
    hints: tuple[SegmentHint, ...]
    playbooks: dict[str, Playbook]
    risk_weight: dict[str, float]


def parse(raw: dict) -> Benchmarks:
    for key in ("publisher", "title", "url"):
        if not raw.get("source", {}).get(key):
            raise ValueError(f"the reference file must name its source ({key})")
    if not raw.get("as_of"):
        raise ValueError("the reference file must say when its figures are from (as_of)")
    transitions = FUNNEL_STEPS[:-1]
    if set(raw["steps"]) != set(transitions):
        raise ValueError(f"steps must be exactly {transitions}")
    steps = {}
    for index, step in enumerate(transitions):
        if raw["steps"][step]["to"] != FUNNEL_STEPS[index + 1]:
            raise ValueError(f"step {step} must lead to {FUNNEL_STEPS[index + 1]}")
        steps[step] = Range.parse(raw["steps"][step], f"steps.{step}")
    playbooks = {key: _playbook(key, body) for key, body in raw["playbooks"].items()}
    causes = {}
    for step, rules in raw["causes"].items():
        if step not in steps:
            raise ValueError(f"causes: unknown step {step}")
        causes[step] = tuple(CauseRule(r["cause"], r["label"], float(r["weight"]), r["weight_origin"], r["playbook"])
                             for r in rules)
        for rule in causes[step]:
            if rule.playbook is not None and rule.playbook not in playbooks:
                raise ValueError(f"causes.{step}: unknown playbook {rule.playbook}")
            if rule.weight <= 0:
                raise ValueError(f"causes.{step}.{rule.cause}: weight must be positive")
    hints = tuple(SegmentHint(h["step"], h["dimension"], str(h["value"]), h["cause"], float(h["factor"]))
                  for h in raw.get("segment_hints", ()))
    risk_weight = {risk: float(weight) for risk, weight in raw["ranking"]["risk_weight"].items()}
    if set(risk_weight) != set(RISKS):
        raise ValueError(f"ranking.risk_weight must weigh exactly {RISKS}")
    return Benchmarks(source=raw["source"], as_of=raw["as_of"], steps=steps, causes=causes, hints=hints,
                      playbooks=playbooks, risk_weight=risk_weight)


def _playbook(key: str, body: dict) -> Playbook:
    if body["method"] not in METHODS:
        raise ValueError(f"playbooks.{key}: method must be one of {METHODS}")
    if body["risk"] not in RISKS:
        raise ValueError(f"playbooks.{key}: risk must be one of {RISKS}")
    implementation = {"method": body["method"]}
    for field in ("flag_key", "workflow", "schedule", "change", "discount_rate"):
        if field in body:
            implementation[field] = body[field]
    if body["method"] == "feature_flag" and "flag_key" not in body:
        raise ValueError(f"playbooks.{key}: a feature flag needs its flag_key")
    return Playbook(key=key, title=body["title"], method=body["method"], risk=body["risk"],
                    recovery_share=Range.parse(body["recovery_share"], f"playbooks.{key}.recovery_share"),
                    margin_cost_rate=float(body.get("margin_cost_rate", 0.0)), implementation=implementation)


@lru_cache(maxsize=None)
def load(path: str | None = None) -> Benchmarks:
    return parse(json.loads(Path(path or DATA_FILE).read_text()))
