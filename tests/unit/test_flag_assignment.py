"""Deterministic flag assignment (§4): stable hash, uniform buckets, independent global holdout,
monotone ramps with a fixed control arm, exact shares, validation, exposure de-duplication, speed."""

from __future__ import annotations

import hashlib
import random
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from autopilot.flags.assignment import (
    BUCKET_COUNT,
    Assignment,
    Exposure,
    FlagEvaluator,
    FlagRule,
    Reason,
    Variant,
    assign,
    bucket,
    in_global_holdout,
)

STORE = "store-7f3a"
RAMP = (1, 5, 10, 25, 50)
VISITOR_COUNT = 100_000


def seeded_visitors(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


@pytest.fixture(scope="module")
def visitors() -> list[str]:
    return seeded_visitors(VISITOR_COUNT, seed=20240611)


def binomial_tolerance(share: float, n: int, sigmas: float = 5.0) -> float:
    """Half-width of a ±`sigmas` band around an expected share of n Bernoulli draws."""
    return sigmas * (share * (1 - share) / n) ** 0.5


# --- the hash -------------------------------------------------------------------------------------


def test_bucket_is_the_documented_sha256_prefix():
    digest = hashlib.sha256(b"store-1:price-test:visitor-1").digest()
    assert bucket("store-1", "price-test", "visitor-1") == int.from_bytes(digest[:8], "big") % 10_000
    # Pinned so a change of hash (which would reshuffle every live experiment) fails loudly.
    assert bucket("store-1", "price-test", "visitor-1") == 8142
    assert bucket("s", "f", "v") == 6487


def test_bucket_is_deterministic_and_in_range(visitors):
    first = [bucket(STORE, "flag", v) for v in visitors[:1000]]
    assert first == [bucket(STORE, "flag", v) for v in visitors[:1000]]
    assert all(0 <= b < BUCKET_COUNT for b in first)


def test_bucket_depends_on_every_part(visitors):
    sample = visitors[:2000]
    base = [bucket(STORE, "flag", v) for v in sample]
    other_store = [bucket("other-store", "flag", v) for v in sample]
    other_flag = [bucket(STORE, "other-flag", v) for v in sample]
    # Equal buckets by chance happen with probability 1e-4 per visitor, so at most a handful.
    assert sum(a == b for a, b in zip(base, other_store)) < 10
    assert sum(a == b for a, b in zip(base, other_flag)) < 10


def test_assignment_is_deterministic(visitors):
    rule = FlagRule("free-shipping-threshold", rollout_pct=25, holdout_pct=5)
    for visitor in visitors[:500]:
        assert assign(rule, STORE, visitor) == assign(rule, STORE, visitor)


# --- uniformity -----------------------------------------------------------------------------------


def chi_square_is_uniform(buckets: list[int], bins: int = BUCKET_COUNT) -> bool:
    """Two-sided χ² check at p = 1e-6 per side: too lumpy *or* suspiciously even both fail.

    The lower side matters: a counter mod 10_000 is perfectly even (χ² = 0) yet no hash at all.
    """
    counts = [0] * bins
    for b in buckets:
        counts[b * bins // BUCKET_COUNT] += 1
    expected = len(buckets) / bins
    statistic = sum((c - expected) ** 2 for c in counts) / expected
    df = bins - 1
    return stats.chi2.ppf(1e-6, df) < statistic < stats.chi2.isf(1e-6, df)


def looks_uniform(buckets: list[int]) -> bool:
    # All 10_000 buckets (10 visitors each expected) catch holes; 100 coarse bins catch smooth skews.
    return chi_square_is_uniform(buckets) and chi_square_is_uniform(buckets, bins=100)


def test_buckets_are_uniform_over_100k_visitors(visitors):
    assert looks_uniform([bucket(STORE, "price-anchor", v) for v in visitors])


def test_uniformity_check_has_power():
    # The check must fail on plausible bugs, otherwise passing it means nothing.
    rng = random.Random(1)
    assert not looks_uniform([i % BUCKET_COUNT for i in range(VISITOR_COUNT)])  # too even
    assert not looks_uniform([rng.randrange(9_900) for _ in range(VISITOR_COUNT)])  # 1 % of buckets empty
    assert not looks_uniform([rng.randrange(2**16) % BUCKET_COUNT for _ in range(VISITOR_COUNT)])  # modulo bias


# --- global holdout ------------------------------------------------------------------------------


def test_global_holdout_is_independent_of_flag_buckets(visitors):
    held = [in_global_holdout(STORE, v) for v in visitors]
    deciles = [bucket(STORE, "price-anchor", v) * 10 // BUCKET_COUNT for v in visitors]
    table = [[0, 0] for _ in range(10)]
    for decile, is_held in zip(deciles, held):
        table[decile][is_held] += 1
    result = stats.chi2_contingency(table)
    assert result.pvalue > 1e-6
    # And the holdout rate within every decile is the global 5 %.
    for out, inside in table:
        assert inside / (out + inside) == pytest.approx(0.05, abs=binomial_tolerance(0.05, out + inside))


@pytest.mark.parametrize("pct", [0, 0.5, 5, 10, 50, 100])
def test_global_holdout_share_is_respected(visitors, pct):
    share = sum(in_global_holdout(STORE, v, pct) for v in visitors) / len(visitors)
    if pct in (0, 100):
        assert share == pct / 100  # exact at the edges
    else:
        assert share == pytest.approx(pct / 100, abs=binomial_tolerance(pct / 100, len(visitors)))


def test_global_holdout_visitors_never_get_any_changeset(visitors):
    rules = [FlagRule(f"flag-{i}", rollout_pct=95, holdout_pct=5) for i in range(5)]
    for visitor in visitors[:5000]:
        held = in_global_holdout(STORE, visitor)
        for rule in rules:
            assignment = assign(rule, STORE, visitor)
            if held:
                flag_bucket = bucket(STORE, rule.flag_key, visitor)
                assert assignment == Assignment(Variant.OFF, Reason.GLOBAL_HOLDOUT, flag_bucket)
            else:
                assert assignment.variant in (Variant.TREATMENT, Variant.CONTROL)  # 95 + 5 = everyone


def test_disabling_the_global_holdout():
    rule = FlagRule("f", rollout_pct=100, holdout_pct=0)
    for visitor in seeded_visitors(2000, 3):
        assert assign(rule, STORE, visitor, global_holdout_pct=0).variant is Variant.TREATMENT


# --- ramps ----------------------------------------------------------------------------------------

# Rollouts stop at 90 so that rollout + the largest holdout (10) stays ≤ 100.
ramp_sequences = st.lists(st.sampled_from([0, 0.01, 1, 5, 10, 25, 50, 75, 90]), min_size=2, max_size=6).map(sorted)


@settings(max_examples=200, deadline=None)
@given(
    visitor=st.text(min_size=1, max_size=40),
    store=st.text(min_size=1, max_size=20),
    ramp=ramp_sequences,
    holdout=st.sampled_from([0, 1, 5, 10]),
)
def test_ramps_are_monotone_and_control_is_fixed(visitor, store, ramp, holdout):
    variants = [assign(FlagRule("flag", rollout_pct=r, holdout_pct=holdout), store, visitor).variant for r in ramp]
    for before, after in zip(variants, variants[1:]):
        if before is Variant.TREATMENT:
            assert after is Variant.TREATMENT
        # Control is the same set at every ramp stage, in both directions.
        assert (before is Variant.CONTROL) == (after is Variant.CONTROL)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32), ramp=ramp_sequences)
def test_ramps_are_monotone_for_many_visitors(seed, ramp):
    for visitor in seeded_visitors(200, seed):
        variants = [assign(FlagRule("flag", r, 5), STORE, visitor).variant for r in ramp]
        treated_from = next((i for i, v in enumerate(variants) if v is Variant.TREATMENT), len(variants))
        assert all(v is Variant.TREATMENT for v in variants[treated_from:])
        assert len({v is Variant.CONTROL for v in variants}) == 1


@pytest.mark.parametrize("rollout", RAMP)
def test_observed_shares_at_each_ramp_stage(visitors, rollout):
    rule = FlagRule("price-anchor", rollout_pct=rollout, holdout_pct=5)
    counts = {reason: 0 for reason in Reason}
    for visitor in visitors:
        counts[assign(rule, STORE, visitor).reason] += 1
    n = len(visitors)
    in_play = 0.95  # shares are of visitors outside the 5 % global holdout
    expected = {
        Reason.GLOBAL_HOLDOUT: 0.05,
        Reason.HOLDOUT: 0.05 * in_play,
        Reason.ROLLOUT: rollout / 100 * in_play,
        Reason.NOT_IN_ROLLOUT: (1 - 0.05 - rollout / 100) * in_play,
    }
    for reason, share in expected.items():
        assert counts[reason] / n == pytest.approx(share, abs=binomial_tolerance(share, n)), reason


def test_zero_rollout_treats_nobody_and_full_split_leaves_nobody_off(visitors):
    dark = FlagRule("f", rollout_pct=0, holdout_pct=5)
    full = FlagRule("f", rollout_pct=95, holdout_pct=5)
    assert all(assign(dark, STORE, v).variant is not Variant.TREATMENT for v in visitors[:5000])
    assert all(assign(full, STORE, v).reason is not Reason.NOT_IN_ROLLOUT for v in visitors[:5000])


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag_key", "rollout", "holdout", "message"),
    [
        ("", 10, 5, "non-empty"),
        ("   ", 10, 5, "non-empty"),
        (None, 10, 5, "non-empty"),
        ("a:b", 10, 5, "must not contain"),
        ("global-holdout", 10, 5, "reserved"),
        ("f", -1, 5, r"\[0, 100\]"),
        ("f", 10, 101, r"\[0, 100\]"),
        ("f", float("nan"), 5, "finite"),
        ("f", float("inf"), 5, "finite"),
        ("f", "10", 5, "finite number"),
        ("f", True, 5, "finite number"),
        ("f", 0.005, 5, "resolution"),
        ("f", 96, 5, "≤ 100"),
    ],
)
def test_invalid_rules_are_rejected(flag_key, rollout, holdout, message):
    with pytest.raises(ValueError, match=message):
        FlagRule(flag_key, rollout_pct=rollout, holdout_pct=holdout)


def test_valid_edge_rules_are_accepted():
    FlagRule("f", rollout_pct=0, holdout_pct=0)
    FlagRule("f", rollout_pct=95, holdout_pct=5)
    FlagRule("f", rollout_pct=0.01, holdout_pct=99.99)
    FlagRule("f", rollout_pct=0.1 + 0.2, holdout_pct=5)  # float noise within the resolution is fine


def test_rules_are_frozen():
    rule = FlagRule("f", 10, 5)
    with pytest.raises(AttributeError):
        rule.rollout_pct = 50  # type: ignore[misc]


@pytest.mark.parametrize("pct", [-1, 100.5, float("nan"), 0.001])
def test_invalid_global_holdout_is_rejected(pct):
    with pytest.raises(ValueError):
        in_global_holdout(STORE, "v", pct)
    with pytest.raises(ValueError):
        FlagEvaluator({}, global_holdout_pct=pct)


def test_evaluator_rejects_mismatched_keys_and_cache_size():
    with pytest.raises(ValueError, match="registered under"):
        FlagEvaluator({"a": FlagRule("b", 10, 5)})
    with pytest.raises(ValueError, match="exposure_cache_size"):
        FlagEvaluator({}, exposure_cache_size=0)


# --- evaluator and exposures ---------------------------------------------------------------------


def make_rules(count: int, rollout: float = 50, holdout: float = 5) -> dict[str, FlagRule]:
    return {f"flag-{i}": FlagRule(f"flag-{i}", rollout, holdout) for i in range(count)}


def visitor_with(reason: Reason, rule: FlagRule, *, global_holdout_pct: float = 5.0) -> str:
    candidates = seeded_visitors(10_000, 9)
    for visitor in candidates:
        if assign(rule, STORE, visitor, global_holdout_pct=global_holdout_pct).reason is reason:
            return visitor
    raise AssertionError(f"no visitor with reason {reason}")


def test_evaluate_matches_assign(visitors):
    rules = make_rules(5)
    evaluator = FlagEvaluator(rules)
    for visitor in visitors[:500]:
        assert evaluator.evaluate(STORE, visitor) == {k: assign(r, STORE, visitor) for k, r in rules.items()}


def test_first_exposure_is_reported_once_per_store_flag_visitor():
    rules = make_rules(3, rollout=95, holdout=5)  # everyone outside the global holdout is exposed
    seen: list[Exposure] = []
    evaluator = FlagEvaluator(rules, on_first_exposure=seen.append, global_holdout_pct=0)
    for _ in range(5):
        evaluator.evaluate(STORE, "v1")
    reported = sorted((e.store_id, e.flag_key, e.visitor_id) for e in seen)
    assert reported == [(STORE, key, "v1") for key in sorted(rules)]
    assert all(e.assignment == assign(rules[e.flag_key], STORE, "v1", global_holdout_pct=0) for e in seen)
    evaluator.evaluate(STORE, "v2")
    evaluator.evaluate("other-store", "v1")
    assert len(seen) == 9


def test_ramp_off_is_not_an_exposure_so_a_later_ramp_still_reports_treatment():
    small, large = FlagRule("f", 1, 5), FlagRule("f", 50, 5)
    visitor = next(
        v for v in seeded_visitors(10_000, 4)
        if assign(small, STORE, v).reason is Reason.NOT_IN_ROLLOUT and assign(large, STORE, v).variant is Variant.TREATMENT
    )
    seen: list[Exposure] = []
    FlagEvaluator({"f": small}, on_first_exposure=seen.append).evaluate(STORE, visitor)
    assert seen == []
    evaluator = FlagEvaluator({"f": small}, on_first_exposure=seen.append)
    evaluator.evaluate(STORE, visitor)
    evaluator.replace_rules({"f": large})  # the ramp grows on a live evaluator, keeping its cache
    evaluator.evaluate(STORE, visitor)
    evaluator.evaluate(STORE, visitor)
    assert [e.assignment.variant for e in seen] == [Variant.TREATMENT]


def test_replace_rules_validates_and_keeps_the_exposure_cache():
    seen: list[Exposure] = []
    evaluator = FlagEvaluator(make_rules(1, rollout=95), on_first_exposure=seen.append, global_holdout_pct=0)
    evaluator.evaluate(STORE, "v")
    with pytest.raises(ValueError, match="registered under"):
        evaluator.replace_rules({"x": FlagRule("y", 10, 5)})
    evaluator.replace_rules(make_rules(2, rollout=95))
    evaluator.evaluate(STORE, "v")
    assert [e.flag_key for e in seen] == ["flag-0", "flag-1"]


def test_global_holdout_visitors_are_exposed_with_their_reason():
    rule = FlagRule("f", 50, 5)
    visitor = visitor_with(Reason.GLOBAL_HOLDOUT, rule)
    seen: list[Exposure] = []
    FlagEvaluator({"f": rule}, on_first_exposure=seen.append).evaluate(STORE, visitor)
    assert [(e.assignment.variant, e.assignment.reason) for e in seen] == [(Variant.OFF, Reason.GLOBAL_HOLDOUT)]


def test_exposure_cache_is_bounded_lru():
    seen: list[Exposure] = []
    evaluator = FlagEvaluator(
        make_rules(1, rollout=95), on_first_exposure=seen.append, exposure_cache_size=2, global_holdout_pct=0
    )
    for visitor in ["a", "b", "a", "c", "a", "b"]:  # "a" stays recent; "b" is evicted by "c"
        evaluator.evaluate(STORE, visitor)
    assert [e.visitor_id for e in seen] == ["a", "b", "c", "b"]
    assert len(evaluator._seen) == 2


def test_failed_exposure_callback_is_retried():
    calls: list[str] = []

    def flaky(exposure: Exposure) -> None:
        calls.append(exposure.flag_key)
        if len(calls) == 1:
            raise ConnectionError("broker down")

    evaluator = FlagEvaluator(make_rules(2, rollout=95), on_first_exposure=flaky, global_holdout_pct=0)
    with pytest.raises(ConnectionError):
        evaluator.evaluate(STORE, "v")
    evaluator.evaluate(STORE, "v")
    evaluator.evaluate(STORE, "v")
    assert calls == ["flag-0", "flag-0", "flag-1"]


# --- speed ----------------------------------------------------------------------------------------


def test_evaluating_twenty_flags_is_far_below_a_millisecond():
    exposures: list[Exposure] = []
    evaluator = FlagEvaluator(make_rules(20), on_first_exposure=exposures.append)
    pool = seeded_visitors(1000, 5)  # a mix of first and repeat evaluations, as on a storefront
    evaluations = 10_000
    started = time.perf_counter()
    for i in range(evaluations):
        evaluator.evaluate(STORE, pool[i % len(pool)])
    mean_seconds = (time.perf_counter() - started) / evaluations
    assert mean_seconds < 200e-6, f"mean evaluation took {mean_seconds * 1e6:.1f} µs"
    assert exposures  # the callback path was exercised, not skipped
