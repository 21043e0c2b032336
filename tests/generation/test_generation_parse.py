"""Parsing model outputs: real outputs of the 135M model (fixtures) and hand-made broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.generation.parse import (
    ECHO_REASONS,
    ECHOED_PREFIX,
    ECHOED_PROMPT,
    NO_CODE_BLOCK,
    NO_TESTS,
    PARSE_ERRORS,
    TESTS_WITHOUT_ASSERTS,
    TRUNCATED,
    UNCLOSED_FENCE,
    code_blocks,
    echo_reason,
    parse_answer,
    parse_concepts,
    parse_instruction,
)
from selfalign.generation.prompts import with_answer_start

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


# -- echoes of the prefix or the prompt ----------------------------------------------------

REAL_ECHOES = load("real_outputs_echoes.jsonl")


def _stage_reason(case: dict) -> str | None:
    """What a stage decides about one output: its echo reason (or, for answers, parse error)."""
    prompt = with_answer_start(case["messages"], case["prefix"])
    text, prefix = case["text"], case["prefix"]
    if case["stage"] == "concepts":
        concepts = parse_concepts(text, truncated=case["finish_reason"] == "length")
        assert concepts == case["expected_concepts"]
        return echo_reason(text, prefix, prompt, concepts)
    if case["stage"] == "tasks":
        return echo_reason(text, prefix, prompt, [parse_instruction(text)])
    return parse_answer(text, case["finish_reason"], prefix=prefix, prompt=prompt).parse_error


@pytest.mark.parametrize("case", REAL_ECHOES, ids=lambda c: c["name"])
def test_real_outputs_of_a_server_that_ignored_the_prefill(case):
    """llama.cpp's answers to the demo prompts, prefill ignored (new-turn) or continued."""
    assert _stage_reason(case) == case["expected"]


def test_real_echo_corpus_has_both_sides():
    lost = [c for c in REAL_ECHOES if "new-turn" in c["name"]]
    kept = [c for c in REAL_ECHOES if "continued" in c["name"]]
    assert sum(c["expected"] == ECHOED_PREFIX for c in lost) >= 8
    assert kept and all(c["expected"] not in ECHO_REASONS for c in kept)


CONCEPTS_PREFIX = "The key programming concepts of this snippet are:\n"
SNIPPET = "### Snippet\n```python\ndef add(a, b):\n    return a + b\n```"
CONCEPTS_PROMPT = [
    {"role": "system", "content": "List the concepts."},
    {"role": "user", "content": SNIPPET},
    {"role": "assistant", "content": CONCEPTS_PREFIX},
]


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("- recursion\n- slicing", None),
        ("recursion, slicing", None),  # a comma line under the intro: the intro is no concept
        ("", ECHOED_PREFIX),  # the answer is only the prefix
        ("\n\n```python\n```", ECHOED_PREFIX),  # nothing of its own
        (CONCEPTS_PREFIX + "- recursion", ECHOED_PREFIX),  # a new turn starting over
        ("The key programming concepts in this code are:\n- loops", ECHOED_PREFIX),
        ("```python\nprint(1)\n```", ECHOED_PREFIX),  # the parsed list is the prefix line
        ("def add(a, b):\n    return a + b", ECHOED_PROMPT),
        ("### Snippet\n```python\ndef add(a, b):\n```", ECHOED_PROMPT),
        ("- def add(a, b)\n- return", None),  # listed, not repeated: poor, not an echo
    ],
)
def test_echoed_concepts(generated, expected):
    text = CONCEPTS_PREFIX + generated
    concepts = parse_concepts(text)
    assert echo_reason(text, CONCEPTS_PREFIX, CONCEPTS_PROMPT, concepts) == expected
    if generated == "recursion, slicing":
        assert concepts == ["recursion", "slicing"]


TASK_PREFIX = "Write a Python function `"
TASK_QUERY = "### Task\nLanguage: python\nCategory: function\nDifficulty: easy\nConcepts: loops"


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("double(x)` that returns twice x.", None),
        ("`.", ECHOED_PREFIX),
        ("```python\ndef f(x):\n    return x\n```", ECHOED_PREFIX),  # a new turn's code fence
        ("Write a Python function `double(x)`.", ECHOED_PREFIX),
        ("\n" + TASK_QUERY, ECHOED_PROMPT),
    ],
)
def test_echoed_instructions(generated, expected):
    prompt = with_answer_start([{"role": "user", "content": TASK_QUERY}], TASK_PREFIX)
    text = TASK_PREFIX + generated
    assert echo_reason(text, TASK_PREFIX, prompt, [parse_instruction(text)]) == expected


def test_echoed_answers_are_parse_errors_and_the_rest_unchanged():
    instruction = "### Instruction\nWrite `double(x)` that returns twice x."
    prompt = with_answer_start([{"role": "user", "content": instruction}], "```python\n")
    good = "```python\n" + GOOD.split("```python\n", 1)[1]
    assert parse_answer(good, prefix="```python\n", prompt=prompt).parse_error is None
    for text, reason in [
        ("```python\n", ECHOED_PREFIX),
        ("```python\n```", ECHOED_PREFIX),
        ("```python\n```python\ndef f():\n    return 1\n```", ECHOED_PREFIX),
        ("```python\n" + instruction, ECHOED_PROMPT),
    ]:
        assert parse_answer(text, prefix="```python\n", prompt=prompt).parse_error == reason
    # Without a prefix or prompt nothing is an echo; completion prompts hold the prefix.
    assert parse_answer("```python\n```").parse_error == NO_CODE_BLOCK
    completion = "Q\n### Response\n```python\n"
    assert echo_reason("```python\nQ", "```python\n", completion) == ECHOED_PROMPT
    assert echo_reason("```python\nx = 1", "```python\n", completion) is None
    assert ECHOED_PREFIX in PARSE_ERRORS and ECHOED_PROMPT in PARSE_ERRORS
