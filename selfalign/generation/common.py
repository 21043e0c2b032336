"""What the three generation stages share: the model section, their set-up, their declaration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from selfalign.llm.config import ModelConfig
from selfalign.records import Record
from selfalign.stage import (
    LazyLLM,
    Processor,
    Section,
    Stage,
    StageContext,
    StageInput,
    read_stage_records,
)

if TYPE_CHECKING:
    from selfalign.generation.prompts import PromptBuilder
    from selfalign.llm.base import SamplingParams

NO_GENERATION = "no_generation"
"""The backend returned no sample for a prompt (a server dropping choices)."""

MODEL = Section("model", ModelConfig)
"""``[model]``: the model the generation stages share (one load for all three in ``generate``)."""


@dataclass
class Generator:
    """What a generation stage's process works with: its options, prompts, sampling, engine."""

    cfg: Any
    model_cfg: ModelConfig
    builder: PromptBuilder
    params: SamplingParams
    engine: LazyLLM
    model: str
    """What identifies the model in record ids: the backend and the model name as given."""


def generator(ctx: StageContext, section: str, prompts: str, samples: int = 1) -> Generator:
    """Load the prompts of ``prompts`` and the sampling of ``[section]``; the model stays lazy."""
    from selfalign.generation.prompts import PromptBuilder

    model_cfg: ModelConfig = ctx.config("model")
    cfg = ctx.config(section)
    builder = PromptBuilder.load(
        prompts, cfg.prompts_dir, num_fewshot=cfg.num_fewshot, mode=model_cfg.mode, seed=cfg.seed
    )
    return Generator(
        cfg=cfg,
        model_cfg=model_cfg,
        builder=builder,
        params=cfg.sampling(n=samples, extra_stop=builder.stop),
        engine=ctx.llm(),
        model=f"{model_cfg.backend}:{model_cfg.model}",
    )


def model_stage(
    *,
    name: str,
    command: str,
    summary: str,
    section: Section,
    input_stage: str,
    record: type[Record],
    processor: Callable[[StageContext], Processor],
    units: tuple[str, str],
) -> Stage:
    """A stage that prompts ``[model]`` once per record of ``input_stage`` (``[section] limit``
    caps how many are read)."""

    def read(ctx: StageContext) -> StageInput:
        return read_stage_records(ctx, input_stage, ctx.config(section.name).limit)

    return Stage(
        name=name,
        command=command,
        summary=summary,
        section=section,
        uses=(MODEL,),
        inputs=(input_stage,),
        record=record,
        read=read,
        processor=processor,
        units=units,
    )
