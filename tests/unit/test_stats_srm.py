"""Sample-ratio mismatch against scipy.stats.chisquare."""

import pytest
from scipy import stats

from autopilot.stats.srm import sample_ratio_mismatch


@pytest.mark.parametrize(
    ("observed", "split"),
    [
        ([5000, 5000], [1, 1]),
        ([5200, 4800], [0.5, 0.5]),
        ([9000, 1100], [0.9, 0.1]),
        ([300, 330, 380], [1, 1, 1]),
    ],
)
def test_matches_scipy_chisquare(observed, split):
    total = sum(observed)
    expected = [total * w / sum(split) for w in split]
    reference = stats.chisquare(observed, expected)
    result = sample_ratio_mismatch(observed, split)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.mismatch == (reference.pvalue < 0.001)


def test_flags_a_broken_split():
    result = sample_ratio_mismatch([5200, 4800], [0.5, 0.5])  # χ² = 16, p ≈ 6e-5
    assert result.statistic == pytest.approx(16.0)
    assert result.mismatch and result.enough_units


def test_balanced_split_is_not_flagged():
    assert not sample_ratio_mismatch([5030, 4970], [1, 1]).mismatch


def test_too_few_units_never_flags():
    result = sample_ratio_mismatch([7, 300], [1, 1])
    assert result.p_value < 0.001
    assert not result.enough_units and not result.mismatch


@pytest.mark.parametrize(
    ("observed", "split"),
    [([0, 0], [1, 1]), ([10], [1]), ([10, 10], [1, 1, 1]), ([-1, 10], [1, 1]), ([10, 10], [1, 0])],
)
def test_invalid_input(observed, split):
    with pytest.raises(ValueError):
        sample_ratio_mismatch(observed, split)
