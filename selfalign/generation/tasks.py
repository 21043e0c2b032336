"""C→I: one coding task per concept list, of a sampled category and difficulty (``tasks``)."""

from __future__ import annotations

import logging
from typing import Any

from selfalign.generation.common import MODEL, NO_GENERATION, limited_input, model_key
from selfalign.generation.config import TasksConfig
from selfalign.generation.prompts import request_rng
from selfalign.records import Concepts, Task, stable_id
from selfalign.stage import (
    BatchResult,
    Processor,
    Section,
    Stage,
    StageContext,
    StageInput,
    parse_records,
)
from selfalign.store import Rejection

logger = logging.getLogger(__name__)

EMPTY_INSTRUCTION = "empty_instruction"
SHORT_INSTRUCTION = "short_instruction"


def sample_spec(cfg: TasksConfig, record_id: str) -> tuple[str, str]:
    """The category and difficulty of the task for one concept record (seeded, resumable)."""
    rng = request_rng(cfg.seed, "spec:" + record_id)
    cats = [(k, w) for k, w in cfg.category_weights.items() if w > 0]
    diffs = [(k, w) for k, w in cfg.difficulty_weights.items() if w > 0]
    category = rng.choices([k for k, _ in cats], weights=[w for _, w in cats])[0]
    difficulty = rng.choices([k for k, _ in diffs], weights=[w for _, w in diffs])[0]
    return category, difficulty


def _read(ctx: StageContext) -> StageInput:
    return limited_input(ctx, "concepts", "tasks")


def _processor(ctx: StageContext) -> Processor:
    from selfalign.generation.parse import parse_instruction
    from selfalign.generation.prompts import PromptBuilder, prompt_hash, with_answer_start

    model_cfg = ctx.config("model")
    cfg: TasksConfig = ctx.config("tasks")
    builder = PromptBuilder.load(
        "tasks", cfg.prompts_dir, num_fewshot=cfg.num_fewshot, mode=model_cfg.mode, seed=cfg.seed
    )
    params = cfg.sampling(n=1, extra_stop=builder.stop)
    engine = ctx.llm()
    model = model_key(model_cfg)

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        result = BatchResult(metrics={"generated_tokens": 0})
        records, result.rejections = parse_records(batch, Concepts)
        good = [(record, *sample_spec(cfg, record.id)) for record in records]
        starts = [
            cfg.answer_start(category=category, difficulty=difficulty, language=cfg.language)
            for _, category, difficulty in good
        ]
        prompts = [
            with_answer_start(
                builder.tasks(c.id, c.concepts, category, difficulty, cfg.language), start
            )
            for (c, category, difficulty), start in zip(good, starts, strict=True)
        ]
        generations = engine.generate(prompts, params) if prompts else []
        for (record, category, difficulty), start, prompt, gens in zip(
            good, starts, prompts, generations, strict=True
        ):
            if not gens:
                result.rejections.append(Rejection(id=record.id, reason=NO_GENERATION))
                continue
            gen = gens[0]
            result.metrics["generated_tokens"] += gen.completion_tokens
            text = start + gen.text
            instruction = parse_instruction(text)
            if len(instruction) < cfg.min_instruction_chars:
                result.rejections.append(
                    Rejection(
                        id=record.id,
                        reason=EMPTY_INSTRUCTION if not instruction else SHORT_INSTRUCTION,
                        record={"concepts_id": record.id, "raw_output": text},
                        detail=f"finish_reason={gen.finish_reason}",
                    )
                )
                continue
            if gen.finish_reason == "length":
                result.metrics["truncated"] = result.metrics.get("truncated", 0) + 1
            result.outputs.append(
                Task(
                    id=stable_id("task", record.id, model, prompt_hash(prompt), params),
                    parent_id=record.id,
                    seed_id=record.seed_id,
                    concepts=list(record.concepts),
                    category=category,
                    difficulty=difficulty,
                    language=cfg.language,
                    instruction=instruction,
                    raw_output=text,
                )
            )
        return result

    return process


STAGE = Stage(
    name="tasks",
    command="tasks",
    summary="C→I: the model writes a new coding task from each concept list",
    section=Section("tasks", TasksConfig),
    uses=(MODEL,),
    inputs=("concepts",),
    record=Task,
    read=_read,
    processor=_processor,
    units=("concept lists", "tasks"),
)
