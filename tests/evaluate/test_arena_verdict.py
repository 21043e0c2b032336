"""Verdict parsing: the shapes real judges write, and what must stay unparsed (never guessed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.evaluate.arena_verdict import VERDICTS, canonical, parse_verdict

FIXTURES = Path(__file__).parent / "fixtures" / "arena_judge_135m.jsonl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The shape the prompt asks for.
        ("Both fix the bug; A also explains why.\n\nVerdict: [[A>B]]", "A>B"),
        ("My final verdict is tie: [[A=B]]", "A=B"),
        ("[[B>>A]]", "B>>A"),
        # Spacing, single brackets, reversed comparisons, other relation signs.
        ("My final verdict is: [[ A >> B ]]", "A>>B"),
        ("Final verdict: [B>A]", "B>A"),
        ("Final verdict: [[A<B]]", "B>A"),
        ("Final verdict: [[A<<B]]", "B>>A"),
        ("Final verdict: [[B<A]]", "A>B"),
        ("verdict [[A==B]]", "A=B"),
        ("verdict: [[A≫B]]", "A>>B"),
        # MT-Bench's single-letter labels, only in double brackets.
        ("[[A]]", "A>B"),
        ("[[B]]", "B>A"),
        ("[[C]]", "A=B"),
        # Markdown, no brackets, after the word "verdict".
        ("**Verdict:** `B>>A`", "B>>A"),
        ("### Final verdict\n\n**A>B**", "A>B"),
        ("Verdict: B > A, because A's query returns duplicates.", "B>A"),
        # The verdict in words.
        ("My final verdict is: Assistant B is significantly better.", "B>>A"),
        ("My final verdict: Assistant A is slightly better.", "A>B"),
        ("Overall, Assistant A's answer is much better than B's.", "A>>B"),
        ("Final verdict: answer A is worse.", "B>A"),
        ("Final verdict: it is a tie.", "A=B"),
        ("My verdict: both answers are equally good.", "A=B"),
        # The list of choices echoed from the prompt, then the real verdict.
        (
            "Choices: [[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]].\n"
            "A misses the None case.\nMy final verdict is [[B>A]].",
            "B>A",
        ),
        # A label repeated is still one label.
        ("[[A>B]] ... to sum up, [[A>B]]", "A>B"),
        # A last line that is only a label.
        ("A's SQL is wrong, B's is right.\n\n**B>>A**", "B>>A"),
    ],
)
def test_verdict_shapes_real_judges_write(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n",
        # The choices echoed with no verdict after them.
        "Output one of [[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]].",
        "Verdict: one of [[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]]",
        # The choices recited and cut off by the token budget (real 135M replies).
        "Verdict: [[A>>B], [A>B",
        "Verdict: [[A>>B]], [[A>B]], [[",
        "Verdict: [[A>>B], [[A>B]]].",
        # Two different verdicts and nothing saying which is final.
        "[[A>B]]\n\nOn reflection, [[B>A]]",
        # Code, not a verdict.
        "def f(A, B):\n    return arr[A] if A>B else arr[B]",
        "Here is my own answer:\n```python\nprint('hi')\n```",
        # Half a sentence (a judge cut off by its token budget).
        "Let me compare the two answers. Assistant A",
        "[[A>C]]",
    ],
)
def test_no_verdict_is_guessed(text: str) -> None:
    assert parse_verdict(text) is None


def test_canonical_covers_every_label_and_its_mirror() -> None:
    mirror = {"A>>B": "B<<A", "A>B": "B<A", "A=B": "B=A", "B>A": "A<B", "B>>A": "A<<B"}
    for label in VERDICTS:
        assert canonical(label) == label
        assert canonical(mirror[label]) == label
        assert canonical(f"[[{label}]]") == label
    assert canonical("A>A") is None
    assert canonical("maybe") is None


def test_real_outputs_of_the_embedded_judge() -> None:
    """Replies of the embedded 135M judge, collected once with the real prompt.

    Each fixture line holds the raw text and the verdict a reader finds in it
    (``null``: none); the parser must agree with the reader on every one.
    """
    records = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 8
    assert any(r["expected"] is None for r in records)
    mismatches = [
        (r["text"][-200:], r["expected"], parse_verdict(r["text"]))
        for r in records
        if parse_verdict(r["text"]) != r["expected"]
    ]
    assert not mismatches, mismatches
