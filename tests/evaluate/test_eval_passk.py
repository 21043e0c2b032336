"""The pass@k estimator against brute-force enumeration of k-subsets."""

from __future__ import annotations

from itertools import combinations

import pytest

from selfalign.evaluate.passk import mean_pass_at_k, pass_at_k


def _brute_force(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 0, 1), (5, 1, 1), (5, 2, 3), (6, 3, 2), (4, 4, 4)])
def test_pass_at_k_matches_enumeration(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(_brute_force(n, c, k))


def test_pass_at_1_is_the_pass_rate() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert mean_pass_at_k([(1, 1), (1, 0), (1, 0), (1, 1)], 1) == pytest.approx(0.5)


def test_impossible_arguments_fail() -> None:
    with pytest.raises(ValueError, match="k must be"):
        pass_at_k(2, 1, 3)
    with pytest.raises(ValueError, match="correct"):
        pass_at_k(2, 3, 1)
