"""The second step of a two-step I→R answer: the model writes the tests it was asked for.

Small models answer a coding task with an implementation and prose but rarely with
tests, however the prompt asks. With `tests_prefill` the first step stops where the
implementation's code block closes; this step then continues that same answer from
`### Tests`, a python fence and `assert <function>(`, so what the model writes next
can only be assertions about the function it just wrote. The tests remain the
model's own: the prefill names the function, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from selfalign.generation.parse import PY_LANGS, code_blocks, longest_valid_prefix
from selfalign.generation.prompts import TESTS_HEADING, with_answer_start
from selfalign.llm.base import LLM, Prompt, SamplingParams

FENCE = "```"
CLOSING_FENCE = "\n```\n"
"""Stop sequence of the first step: a fence alone on its line closes a block (an
opening fence carries its language, ```` ```python ````)."""

_ENTRY = re.compile(r"^(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


@dataclass
class Answer:
    """One sampled answer while it is being written: its text so far and how it ended."""

    text: str
    finish_reason: str
    tokens: int
    prefilled: int = 0
    """How many leading characters of ``text`` the prompt itself holds (its prefill)."""


def entry_point(code: str) -> str | None:
    """The first top-level function the code defines (what the tests should call)."""
    match = _ENTRY.search(code)
    return match.group(1) if match else None


def implementation_head(answer: Answer) -> tuple[str, str] | None:
    """The answer up to the end of its first python code block, closed, and that
    block's code; None when the answer has no complete implementation to test (no
    block, or cut at the token limit)."""
    if answer.finish_reason == "length":
        return None
    blocks = [b for b in code_blocks(answer.text) if b.lang in PY_LANGS]
    if not blocks or not blocks[0].code.strip():
        return None
    first = blocks[0]
    if first.closed:
        return answer.text[: first.end].rstrip("\n") + "\n", first.code
    # Stopped on the closing fence (the stop sequence is cut from the text): close it.
    return answer.text.rstrip("\n") + "\n" + FENCE + "\n", first.code


def tests_start(implementation_code: str) -> tuple[str, str]:
    """What the tests step writes for the model: the heading and fence, then the first
    call (``assert <function>(``), which the model's first line continues."""
    name = entry_point(implementation_code)
    call = f"assert {name}(" if name else "assert "
    return f"\n{TESTS_HEADING}\n{FENCE}python\n", call


def write_tests(
    llm: LLM,
    prompts: Sequence[Prompt],
    answers: list[list[Answer]],
    params: SamplingParams,
) -> int:
    """Extend every testable answer with the model's tests, in place; return how many.

    ``answers[i]`` are the samples for ``prompts[i]``; each answer's first
    ``prefilled`` characters are already in the prompt (its answer prefix). All
    continuations go to the engine in one call, so it batches them.
    """
    jobs: list[tuple[Answer, str, str, str]] = []
    continuations: list[Prompt] = []
    for prompt, samples in zip(prompts, answers, strict=True):
        for answer in samples:
            found = implementation_head(answer)
            if found is None:
                continue
            head, code = found
            heading, call = tests_start(code)
            jobs.append((answer, head, heading, call))
            continuations.append(
                with_answer_start(prompt, head[answer.prefilled :] + heading + call)
            )
    if not continuations:
        return 0
    outputs = llm.generate(continuations, params)
    for (answer, head, heading, call), gens in zip(jobs, outputs, strict=True):
        if not gens:
            continue
        gen = gens[0]
        tests = call + gen.text
        finish = gen.finish_reason
        if finish == "length" and (complete := longest_valid_prefix(tests)).strip():
            # A cut-off last assert would be a syntax error; the complete ones stand.
            tests, finish = complete, "stop"
        answer.text = head + heading + tests.rstrip("\n") + "\n" + FENCE
        answer.finish_reason = finish
        answer.tokens += gen.completion_tokens
    return len(jobs)
