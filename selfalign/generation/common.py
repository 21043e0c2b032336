"""What the three generation stages share: reading the previous stage, loading the model once."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from selfalign.config import ConfigError
from selfalign.llm.base import LLM, Generation, Prompt, SamplingParams, load_llm
from selfalign.llm.config import ModelConfig
from selfalign.store import RunDir

logger = logging.getLogger(__name__)

MALFORMED_INPUT = "malformed_input"
NO_GENERATION = "no_generation"
"""The backend returned no sample for a prompt (a server dropping choices)."""


class MissingInputError(ConfigError):
    """The previous stage has not run (or not finished) in this run directory."""


def previous_stage_records(
    run: RunDir, stage: str, command: str, limit: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """The previous stage's records (the first `limit` if set) and their count.

    Fails with the command to run when that stage is missing or incomplete.
    """
    store = run.stage(stage)
    if not store.is_complete():
        state = "is incomplete" if store.exists() else "has not run"
        raise MissingInputError(
            f"stage {stage!r} {state} in {run.path}: run `selfalign {command} --run {run.path}` "
            "first"
        )
    records: Iterator[dict[str, Any]] = store.read()
    if limit:
        records = itertools.islice(records, limit)
    rows = list(records)
    return rows, len(rows)


def input_id(record: dict[str, Any]) -> str:
    return str(record.get("id"))


@dataclass
class LazyLLM:
    """Loads the backend on first use, so resuming a finished stage never loads a model."""

    cfg: ModelConfig
    llm: LLM | None = None
    loader: Callable[[ModelConfig], LLM] = field(default=load_llm)

    def get(self) -> LLM:
        if self.llm is None:
            self.llm = self.loader(self.cfg)
        return self.llm

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        """The ``LLM`` protocol: load on first use, then delegate, so one instance can be
        shared by several stages without loading a model none of them needs."""
        return self.get().generate(prompts, params)


def model_key(cfg: ModelConfig) -> str:
    """What identifies the model in record ids: the backend and the model name as given."""
    return f"{cfg.backend}:{cfg.model}"
