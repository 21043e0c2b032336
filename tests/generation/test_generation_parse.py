"""Parsing model outputs: real outputs of the 135M model (fixtures) and hand-made broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.generation.parse import (
    NO_CODE_BLOCK,
    NO_TESTS,
    TESTS_WITHOUT_ASSERTS,
    TRUNCATED,
    UNCLOSED_FENCE,
    code_blocks,
    parse_answer,
    parse_concepts,
    parse_instruction,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


# Two-step answers (tests_prefill) of the demo configuration are in the corpus too.
REAL_ANSWERS = load("real_outputs_respond.jsonl") + load("real_outputs_two_step.jsonl")


@pytest.mark.parametrize("case", REAL_ANSWERS, ids=lambda c: c["name"])
def test_real_model_answers_parse_as_labelled(case):
    parsed = parse_answer(case["text"], case["finish_reason"])
    expected = case["expected"]
    assert parsed.parse_error == expected["parse_error"]
    assert parsed.solution.startswith(expected["solution_starts"])
    assert parsed.tests.startswith(expected["tests_starts"])
    # Whatever the verdict, the parts come from the text and the response excludes the tests.
    assert parsed.solution.split("\n\n")[0] in case["text"]
    if parsed.tests:
        assert parsed.tests not in parsed.response


def test_real_corpus_covers_good_and_broken_answers():
    reasons = {c["expected"]["parse_error"] for c in REAL_ANSWERS}
    assert None in reasons and len(reasons) >= 3


GOOD = (
    "Text.\n\n```python\ndef f():\n    return 1\n```\n\n"
    "### Tests\n```python\nassert f() == 1\n```\n"
)


@pytest.mark.parametrize(
    ("text", "finish", "error"),
    [
        (GOOD, "stop", None),
        (GOOD, "length", TRUNCATED),
        ("Text.\n\n```python\ndef f():\n    return 1\n", "stop", UNCLOSED_FENCE),
        (
            GOOD.replace("```\n\n### Tests\n```python\nassert f() == 1\n```\n", ""),
            "stop",
            UNCLOSED_FENCE,
        ),
        ("I would loop over the list and add.", "stop", NO_CODE_BLOCK),
        ("### Tests\n```python\nassert f() == 1\n```", "stop", NO_CODE_BLOCK),
        ("```python\ndef f():\n    return 1\n```\nDone.", "stop", NO_TESTS),
        (GOOD.replace("assert f() == 1", "print(f())"), "stop", TESTS_WITHOUT_ASSERTS),
        (GOOD.replace("### Tests", "**Tests:**"), "stop", None),
        (GOOD.replace("### Tests\n", ""), "stop", None),  # a last block of asserts is the tests
        (GOOD.replace("```python", "```Python"), "stop", None),
    ],
)
def test_answer_parse_errors(text, finish, error):
    assert parse_answer(text, finish).parse_error == error


def test_answer_parts():
    text = (
        "Plan.\n\n```python\nimport math\n```\n\nThen:\n\n```py\ndef area(r):\n"
        "    return math.pi * r * r\n```\n\n## Tests\n\n```python\nassert area(0) == 0\n```\n"
        "\n```python\nassert area(1) > 3\n```"
    )
    parsed = parse_answer(text)
    assert parsed.parse_error is None
    assert parsed.solution == "import math\n\ndef area(r):\n    return math.pi * r * r"
    assert parsed.tests == "assert area(0) == 0"
    assert parsed.response.endswith("return math.pi * r * r\n```")


def test_code_blocks_handles_nested_markers_and_tildes():
    text = "~~~python\nx = '```'\n~~~\n````\nraw\n````"
    blocks = code_blocks(text)
    assert [(b.lang, b.closed) for b in blocks] == [("python", True), ("", True)]
    assert blocks[0].code == "x = '```'\n"


@pytest.mark.parametrize(
    ("text", "truncated", "expected"),
    [
        (
            "recursion, list comprehension, dictionary lookup",
            False,
            ["recursion", "list comprehension", "dictionary lookup"],
        ),
        ("Concepts: **sorting**, `set()`, and hashing.", False, ["sorting", "set()", "hashing"]),
        (
            "Here are the concepts:\n1. Recursion: calling itself\n2. Memoization\n",
            False,
            ["Recursion", "Memoization"],
        ),
        ("- loops\n- loops\n- Loops\n- strings", False, ["loops", "strings"]),
        ("a, b, b, a, c, d", True, ["a", "b", "c"]),  # the cut-off last item goes
        ("", False, []),
        ("```python\nprint(1)\n```", False, []),
    ],
)
def test_parse_concepts(text, truncated, expected):
    assert parse_concepts(text, truncated=truncated) == expected


def test_parse_concepts_caps_count_and_length():
    many = ", ".join(f"c{i}" for i in range(20))
    assert len(parse_concepts(many, max_concepts=5)) == 5
    assert parse_concepts("x" * 200 + ", short") == ["short"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Write a function f.  ", "Write a function f."),
        ("Instruction: Write f.", "Write f."),
        ("**Task:** Write f.", "Write f."),
        ("Write f.\n\n### Response\nHere is f.", "Write f."),
        ("", ""),
    ],
)
def test_parse_instruction(text, expected):
    assert parse_instruction(text) == expected


REAL_CONCEPTS = load("real_outputs_concepts.jsonl")


@pytest.mark.parametrize("case", REAL_CONCEPTS, ids=lambda c: c["name"])
def test_real_model_concept_lists_parse_as_labelled(case):
    """Greedy decoding made the model loop until max_tokens: repeats and the cut item go."""
    got = parse_concepts(case["text"], truncated=case["finish_reason"] == "length")
    assert got == case["expected"]
    assert len(got) < len(case["text"].split(","))


REAL_PREFILLED_CONCEPTS = load("real_outputs_concepts_prefilled.jsonl")


@pytest.mark.parametrize("case", REAL_PREFILLED_CONCEPTS, ids=lambda c: c["name"])
def test_real_prefilled_concept_lists_parse_as_labelled(case):
    """Lists after "The key programming concepts of this snippet are:" (configs/demo.toml)."""
    got = parse_concepts(case["text"], truncated=case["finish_reason"] == "length")
    assert got == case["expected"]
