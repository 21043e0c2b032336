"""Parsing judge outputs: every collected and hand-written fixture, then each rule on its own."""

from __future__ import annotations

from typing import Any

import pytest

from selfalign.judge.parse import (
    AMBIGUOUS,
    MISSING_RATING,
    NO_OUTPUT,
    OUT_OF_RANGE,
    REASONS,
    TRUNCATED,
    UNPARSEABLE,
    parse_judgment,
    read_rating,
)

from .conftest import load_jsonl

HAND = load_jsonl("hand_outputs.jsonl")
REAL = load_jsonl("real_outputs.jsonl")


def _check(row: dict[str, Any]) -> None:
    parsed = parse_judgment(row["text"], row["count"], row["finish_reason"])
    expected = row["expected"]
    want = [None if v is None else float(v) for v in expected["ratings"]]
    assert list(parsed.ratings) == want, (row["name"], parsed)
    assert parsed.reason == expected["reason"], (row["name"], parsed)
    assert len(parsed.rationales) == row["count"]
    if "rationales" in expected:
        assert list(parsed.rationales) == expected["rationales"], row["name"]
    if parsed.reason is None:
        assert all(r is not None and 1 <= r <= 5 for r in parsed.ratings)
    else:
        assert parsed.reason in REASONS
        assert parsed.detail, "a rejected judgment must say why"


@pytest.mark.parametrize("row", HAND, ids=[r["name"] for r in HAND])
def test_hand_written_judge_outputs(row):
    _check(row)


@pytest.mark.parametrize("row", REAL, ids=[r["name"] for r in REAL])
def test_outputs_of_the_real_135m_judge(row):
    _check(row)


def test_the_fixtures_cover_every_shape_and_reason():
    assert len(REAL) >= 20, "collect more real outputs (tests/judge/fixtures/collect_real.py)"
    assert {r["source"] for r in REAL} == {"smollm2-135m-instruct"}
    shapes = {parse_judgment(r["text"], r["count"], r["finish_reason"]).shape for r in HAND}
    assert {"json", "table", "sections", "inline", "single", "none"} <= shapes
    reasons = {r["expected"]["reason"] for r in HAND}
    assert set(REASONS) <= reasons


def test_the_real_judge_is_weak_but_sometimes_readable():
    # Honest numbers for docs/judge.md: the 135M judge must produce some readable
    # judgments (else the demo judges nothing) and fails on many (it is weak).
    parsed = [parse_judgment(r["text"], r["count"], r["finish_reason"]) for r in REAL]
    assert any(p.ok for p in parsed)
    assert any(not p.ok for p in parsed)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Rating: 4", 4.0),
        ("**Rating:** 4/5", 4.0),
        ("Rating: **4**/5", 4.0),
        ("Score = 2", 2.0),
        ("rated 3 out of 5", 3.0),
        ("[[5]]", 5.0),
        ("I give it 2/5.", 2.0),
        ("Rating: [3]", 3.0),
    ],
)
def test_read_rating_shapes(text, value):
    statements, _ = read_rating(text)
    assert statements and statements[0][0] == value


@pytest.mark.parametrize(
    "text",
    ["Rating: 1-5", "Rating: <a whole number from 1 to 5>", "the underscore: 4", "3 lines", ""],
)
def test_read_rating_refuses_what_is_not_a_rating(text):
    statements, _ = read_rating(text)
    assert statements == [] or statements[0][0] is None


def test_denominators_other_than_five_are_never_rescaled():
    parsed = parse_judgment("Response 1: Rating 8/10\nResponse 2: Rating 4/5", 2)
    assert parsed.reason == OUT_OF_RANGE and parsed.ratings == (None, 4.0)
    assert "8/10" in parsed.detail


def test_zero_based_numbering_is_shifted_only_when_consistent():
    assert parse_judgment("Response 0: [[2]]\nResponse 1: [[5]]", 2).ratings == (2.0, 5.0)
    # 0, 1 and 2 for two responses cannot be zero-based: 0 is stray, 1 and 2 are kept.
    parsed = parse_judgment("Response 0: [[2]]\nResponse 1: [[5]]\nResponse 2: [[1]]", 2)
    assert parsed.ratings == (5.0, 1.0) and "mentions response 0" in parsed.detail


def test_a_repeated_equal_rating_is_not_a_conflict():
    text = "### Response 1\nRating: 4\n### Response 2\nRating: 2\n\nSummary:\nResponse 1: 4"
    assert parse_judgment(text, 2).ratings == (4.0, 2.0)


def test_conflicting_ratings_are_ambiguous_not_averaged():
    text = "### Response 1\nRating: 4\n### Response 2\nRating: 2\n### Response 1\nRating: 5"
    parsed = parse_judgment(text, 2)
    assert parsed.reason == AMBIGUOUS and parsed.ratings[0] is None


def test_reason_precedence():
    assert parse_judgment("", 2).reason == NO_OUTPUT
    assert parse_judgment("no idea", 2).reason == UNPARSEABLE
    assert parse_judgment("no idea", 2, "length").reason == TRUNCATED
    assert parse_judgment("### Response 1\nRating: 3", 2).reason == MISSING_RATING
    assert parse_judgment("### Response 1\nRating: 3", 2, "length").reason == TRUNCATED
    assert parse_judgment("### Response 1\nRating: N/A\n### Response 2\nRating: N/A", 2).reason == (
        MISSING_RATING
    )


def test_one_response_needs_no_heading_but_many_do():
    assert parse_judgment("Solid work. Rating: 4", 1).ratings == (4.0,)
    # Two responses and one unlabelled rating: which one it belongs to is a guess.
    assert parse_judgment("Solid work. Rating: 4", 2).reason == UNPARSEABLE


def test_rationale_is_read_after_its_label_and_cleaned():
    text = "### Response 1\n- **Rating:** 5\n- **Rationale:** *Clear* and `short`.\n"
    parsed = parse_judgment(text, 1)
    assert parsed.rationales == ("Clear and short",)


def test_count_must_be_positive():
    with pytest.raises(ValueError, match="count"):
        parse_judgment("Rating: 4", 0)
