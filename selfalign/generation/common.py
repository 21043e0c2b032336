"""What the three generation stages share: the model section, their input, record ids."""

from __future__ import annotations

from selfalign.llm.config import ModelConfig
from selfalign.stage import Section, StageContext, StageInput, read_stage_records

NO_GENERATION = "no_generation"
"""The backend returned no sample for a prompt (a server dropping choices)."""

MODEL = Section("model", ModelConfig)
"""``[model]``: the model the generation stages share (one load for all three in ``generate``)."""


def limited_input(ctx: StageContext, stage: str, section: str) -> StageInput:
    """The records of ``stage``, the first ``[section] limit`` of them when a limit is set."""
    return read_stage_records(ctx, stage, ctx.config(section).limit)


def model_key(cfg: ModelConfig) -> str:
    """What identifies the model in record ids: the backend and the model name as given."""
    return f"{cfg.backend}:{cfg.model}"
