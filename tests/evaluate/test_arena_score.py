"""Arena scoring: points, outcomes, rates, the score and the bootstrap interval."""

from __future__ import annotations

import pytest

from selfalign.evaluate.arena_judge import model_points
from selfalign.evaluate.arena_score import (
    LOSS,
    MISSING,
    TIE,
    WIN,
    grouped,
    outcome,
    stats,
    stats_from_dict,
)


def test_points_are_from_the_models_side() -> None:
    assert [model_points(v, "A") for v in ("A>>B", "A>B", "A=B", "B>A", "B>>A")] == [
        2, 1, 0, -1, -2,
    ]
    assert [model_points(v, "B") for v in ("A>>B", "A>B", "A=B", "B>A", "B>>A")] == [
        -2, -1, 0, 1, 2,
    ]
    assert model_points(None, "A") is None


def test_the_sign_of_the_summed_games_decides() -> None:
    assert outcome([2, -2]) == (TIE, 0)
    assert outcome([1, 0]) == (WIN, 1)
    assert outcome([2, -1]) == (WIN, 1)
    assert outcome([-1, 0]) == (LOSS, -1)
    assert outcome([1, -2]) == (LOSS, -1)


def test_missing_games_follow_the_policy_and_are_never_filled_in() -> None:
    assert outcome([1, None], "other_game") == (WIN, 1)
    assert outcome([None, -2], "other_game") == (LOSS, -2)
    assert outcome([1, None], "exclude") == (MISSING, None)
    assert outcome([None, None], "other_game") == (MISSING, None)
    with pytest.raises(ValueError, match="other_game"):
        outcome([1, 1], "guess")


def test_score_is_two_wins_plus_ties_over_two_n() -> None:
    result = stats([WIN, WIN, TIE, LOSS, MISSING], rounds=200)
    assert (result.n, result.wins, result.ties, result.losses, result.missing) == (4, 2, 1, 1, 1)
    assert result.win_rate == 0.5
    assert result.tie_rate == 0.25
    assert result.score == pytest.approx((2 * 2 + 1) / (2 * 4))


def test_bootstrap_interval_contains_the_estimate_and_is_seeded() -> None:
    outcomes = [WIN] * 23 + [TIE] * 11 + [LOSS] * 17
    first = stats(outcomes, rounds=2000, seed=7)
    again = stats(outcomes, rounds=2000, seed=7)
    other = stats(outcomes, rounds=2000, seed=8)
    assert first.score is not None and first.score_ci is not None
    assert first.score_ci.low < first.score < first.score_ci.high
    assert first.win_rate_ci is not None and first.win_rate is not None
    assert first.win_rate_ci.low < first.win_rate < first.win_rate_ci.high
    assert first.score_ci == again.score_ci
    assert first.score_ci != other.score_ci
    # 51 questions: the interval is wide, but not absurdly so.
    assert 0.1 < first.score_ci.high - first.score_ci.low < 0.4


def test_a_unanimous_group_has_a_point_interval() -> None:
    result = stats([WIN] * 10, rounds=100)
    assert result.score == 1.0
    assert result.score_ci is not None
    assert (result.score_ci.low, result.score_ci.high) == (1.0, 1.0)


def test_an_empty_group_has_no_rates() -> None:
    result = stats([MISSING, MISSING])
    assert result.n == 0 and result.missing == 2
    assert result.score is None and result.score_ci is None


def test_a_question_counts_in_each_of_its_groups() -> None:
    groups = grouped([(("Python", "SQL"), WIN), (("Python",), LOSS)], rounds=50)
    assert list(groups) == ["Python", "SQL"]  # larger groups first
    assert groups["Python"].n == 2 and groups["Python"].score == 0.5
    assert groups["SQL"].n == 1 and groups["SQL"].score == 1.0


def test_stats_survive_the_summary_round_trip() -> None:
    result = stats([WIN, TIE, LOSS, LOSS], rounds=100)
    assert stats_from_dict(result.to_dict()) == result
