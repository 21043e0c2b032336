"""Fixtures for the judge: hand-made tasks, collected judge outputs, a scripted judge."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from selfalign.judge.rate import Candidate, JudgeTask
from selfalign.llm.base import Generation, Prompt, SamplingParams

FIXTURES = Path(__file__).parent / "fixtures"


def load_jsonl(name: str) -> list[dict[str, Any]]:
    path = FIXTURES / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_tasks() -> list[JudgeTask]:
    raw = json.loads((FIXTURES / "tasks.json").read_text(encoding="utf-8"))
    return [
        JudgeTask(t["task_id"], t["instruction"], tuple(Candidate(**c) for c in t["candidates"]))
        for t in raw
    ]


def prompt_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(m["content"] for m in prompt)


def shown_responses(prompt: Prompt) -> list[str]:
    """The response texts of a judge prompt, in the order the judge sees them."""
    return re.findall(r"<response \d+>\n(.*?)\n</response \d+>", prompt_text(prompt), re.S)


class ScriptedJudge:
    """A judge that answers from a function of (prompt, call number). For flow tests only:
    it never shows that a real judge works."""

    def __init__(self, answer: Callable[[Prompt, int], str]) -> None:
        self.answer = answer
        self.calls: list[list[Prompt]] = []
        self.params: list[SamplingParams] = []

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        self.calls.append(list(prompts))
        self.params.append(params)
        call = len(self.calls)
        return [[Generation(self.answer(p, call), "stop", 7)] for p in prompts]


def rating_in(text: str) -> int:
    """The rating a scripted judge gives a response: the digit after 'QUALITY='."""
    found = re.search(r"QUALITY=(\d)", text)
    return int(found.group(1)) if found else 3


def fair_answer(prompt: Prompt, call: int) -> str:
    """Rates each shown response by its QUALITY marker, in the requested format."""
    lines = []
    for i, text in enumerate(shown_responses(prompt), start=1):
        lines.append(f"### Response {i}\nRating: {rating_in(text)}\nRationale: marker says so.")
    body = "\n\n".join(lines)
    if isinstance(prompt, list) and prompt[-1]["role"] == "assistant":
        # A prefilled prompt: the judge continues after "### Response 1\nRating:".
        return body.removeprefix("### Response 1\nRating:")
    if isinstance(prompt, str) and prompt.endswith("Rating:"):
        return body.removeprefix("### Response 1\nRating:")
    return body


@pytest.fixture
def scripted_judge() -> type[ScriptedJudge]:
    return ScriptedJudge


@pytest.fixture(scope="session")
def real_llm() -> Any:
    """The embedded 135M model on CPU, loaded once for the whole session."""
    from selfalign.llm import ModelConfig, load_llm

    return load_llm(ModelConfig(device="cpu", engine_batch_size=8))
