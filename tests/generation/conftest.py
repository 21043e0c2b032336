"""Fixtures for the generation stages: a run with seeds, a fake LLM, the real model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from selfalign.llm.base import Generation, Prompt, SamplingParams
from selfalign.records import Seed, stable_id
from selfalign.store import RunDir

FIXTURES = Path(__file__).parent / "fixtures"
PROMPTS = FIXTURES / "prompts"

SEED_CODES = [
    'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b',
    'def is_even(n):\n    """Tell whether n is even."""\n    return n % 2 == 0',
    'def first_word(s):\n    """Return the first word of s."""\n    return s.split()[0]',
    'def squares(n):\n    """Squares of 0..n-1."""\n    return [i * i for i in range(n)]',
    'def count_vowels(s):\n    """Count vowels."""\n    return sum(c in "aeiou" for c in s)',
]


def write_stage(run: RunDir, stage: str, rows: list[dict[str, Any]]) -> None:
    """Write a complete stage directly (as if an earlier stage had run)."""
    store = run.stage(stage)
    store.dir.mkdir(parents=True, exist_ok=True)
    store.commit_batch(rows, 0)
    store.compact()
    store.mark_success()


@pytest.fixture
def seeded_run(run_dir: RunDir) -> RunDir:
    """A run whose `seeds` stage holds five small seeds."""
    seeds = [
        Seed(id=stable_id("seed", code), parent_id=None, code=code, name=f"s{i}").to_dict()
        for i, code in enumerate(SEED_CODES)
    ]
    write_stage(run_dir, "seeds", seeds)
    return run_dir


class FakeLLM:
    """Answers from a function of the prompt; records every call. For flow tests only."""

    def __init__(self, answer: Callable[[Prompt, int], str], fail_on_call: int | None = None):
        self.answer = answer
        self.calls: list[list[Prompt]] = []
        self.fail_on_call = fail_on_call

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        self.calls.append(list(prompts))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt  # what Ctrl-C / SIGTERM turns into
        return [
            [Generation(self.answer(p, k), "stop", 5) for k in range(params.n)] for p in prompts
        ]


@pytest.fixture
def prompts_dir() -> str:
    """Throwaway few-shot examples and the system prompts, so tests do not follow prompt edits."""
    return str(PROMPTS)


@pytest.fixture
def stage_writer() -> Callable[[RunDir, str, list[dict[str, Any]]], None]:
    return write_stage


@pytest.fixture
def fake_llm_factory() -> type[FakeLLM]:
    return FakeLLM


@pytest.fixture(scope="session")
def real_llm() -> Any:
    """The embedded 135M model on CPU, loaded once for the whole session."""
    from selfalign.llm import ModelConfig, load_llm

    return load_llm(ModelConfig(device="cpu", engine_batch_size=8))
