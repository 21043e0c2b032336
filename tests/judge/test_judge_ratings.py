"""What later stages read from judgments: means, best rated, judge pairs, agreement, rows."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from selfalign.judge.rate import Candidate
from selfalign.judge.ratings import (
    Agreement,
    best_rated,
    execution_agreement,
    judge_pair,
    mean_rating,
    mean_ratings,
    rating,
    rating_counts,
    ratings_row,
)
from selfalign.records import Judgments

PREFS = ["instruction_following", "readability"]


def _record(rows: dict[str, tuple[float | None, float | None]], statuses: list[str]) -> Judgments:
    entries = []
    for attempt_id, values in rows.items():
        ratings = dict(zip(PREFS, values, strict=True))
        present = [v for v in values if v is not None]
        entries.append(
            {
                "attempt_id": attempt_id,
                "ratings": ratings,
                "rationales": {p: f"why {attempt_id} {p}" for p in PREFS},
                "mean_rating": sum(present) / len(present) if present else None,
            }
        )
    return Judgments(
        id="judgments-x",
        parent_id="task-1",
        task_id="task-1",
        judge_model="m",
        preferences=list(PREFS),
        attempt_ids=list(rows),
        statuses=statuses,
        ratings=entries,
    )


def test_rating_and_means():
    record = _record({"a": (4.0, 2.0), "b": (5.0, None), "c": (None, None)}, ["pass"] * 3)
    assert rating(record, "a", "readability") == 2.0
    assert rating(record, "b", "readability") is None
    assert rating(record, "zzz", "readability") is None
    assert mean_rating(record, "a") == 3.0
    assert mean_rating(record, "b") == 5.0
    assert mean_rating(record, "c") is None
    assert mean_rating(record, "a", ["instruction_following"]) == 4.0
    assert mean_ratings(record) == {"a": 3.0, "b": 5.0, "c": None}


def test_best_rated_among_the_given_attempts_first_on_ties():
    record = _record({"a": (4.0, 4.0), "b": (5.0, 5.0), "c": (4.0, 4.0)}, ["pass"] * 3)
    assert best_rated(record, {"a", "b", "c"}) == "b"
    assert best_rated(record, {"a", "c"}) == "a"
    assert best_rated(record, set()) is None
    unrated = _record({"a": (None, None)}, ["pass"])
    assert best_rated(unrated, {"a"}) is None


def test_judge_pair_best_against_worst_with_a_margin():
    record = _record(
        {"a": (3.0, 3.0), "b": (5.0, 4.0), "c": (1.0, 2.0), "d": (1.0, 2.0)},
        ["pass", "pass", "fail", "fail"],
    )
    pair = judge_pair(record, min_margin=1.0)
    assert pair is not None
    assert (pair.chosen_attempt_id, pair.rejected_attempt_id) == ("b", "c")
    assert (pair.chosen_rating, pair.rejected_rating, pair.margin) == (4.5, 1.5, 3.0)
    assert judge_pair(record, min_margin=3.5) is None
    among = judge_pair(record, min_margin=0.5, among={"a", "b"})
    assert among is not None and among.rejected_attempt_id == "a"
    equal = _record({"a": (3.0, 3.0), "b": (3.0, 3.0)}, ["pass", "pass"])
    assert judge_pair(equal, min_margin=0.0) is None, "chosen and rejected never rate equal"
    lone = _record({"a": (3.0, 3.0), "b": (None, None)}, ["pass", "fail"])
    assert judge_pair(lone, min_margin=0.0) is None


def test_agreement_with_execution():
    record = _record(
        {"p1": (5.0, 5.0), "p2": (2.0, 2.0), "f1": (3.0, 3.0), "s": (1.0, 1.0)},
        ["pass", "pass", "fail", "sandbox_error"],
    )
    got = execution_agreement(record)
    assert got == Agreement(agree=1, disagree=1, tie=0) and got.rate == 0.5
    assert execution_agreement(record, {"p1": "pass", "f1": "fail"}).agree == 1
    assert Agreement().rate is None
    assert (got + Agreement(1, 0, 1)).pairs == 4


def test_rating_counts_per_preference():
    one = _record({"a": (4.0, 2.0), "b": (4.0, None)}, ["pass", "fail"])
    two = _record({"c": (3.5, 2.0)}, ["pass"])
    counts = rating_counts([one, two])
    assert counts["instruction_following"] == Counter({4.0: 2, 3.5: 1})
    assert counts["readability"] == Counter({2.0: 2})


def test_ratings_row_has_ultrafeedback_shape_and_loads(tmp_path):
    datasets = pytest.importorskip("datasets")
    record = _record({"a": (4.0, 2.0), "b": (None, 5.0)}, ["pass", "fail"])
    cands = [Candidate("a", "answer a", "pass"), Candidate("b", "answer b", "fail")]
    row = ratings_row(record, "Do the thing.", cands)
    assert row["instruction"] == "Do the thing." and row["preferences"] == PREFS
    first = row["completions"][0]
    assert first["response"] == "answer a" and first["status"] == "pass"
    assert first["annotations"]["readability"] == {
        "rating": 2.0,
        "rationale": "why a readability",
    }
    assert row["completions"][1]["annotations"]["instruction_following"]["rating"] is None
    missing = ratings_row(record, "Do the thing.", cands[:1])
    assert missing["completions"][1]["response"] == ""
    assert missing["completions"][1]["status"] == "fail"
    path = tmp_path / "ratings.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(missing) + "\n")
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert ds.num_rows == 2
    assert ds[0]["completions"][1]["annotations"]["readability"]["rating"] == 5.0
