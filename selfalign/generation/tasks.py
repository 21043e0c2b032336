"""C→I: one coding task per concept list, of a sampled category and difficulty (``tasks``)."""

from __future__ import annotations

import logging
from typing import Any

from selfalign.generation.common import NO_GENERATION, generator, model_stage
from selfalign.generation.config import TasksConfig
from selfalign.generation.prompts import request_rng
from selfalign.records import Concepts, Task, stable_id
from selfalign.stage import (
    BatchResult,
    Processor,
    Section,
    StageContext,
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



def _processor(ctx: StageContext) -> Processor:
    from selfalign.generation.parse import echo_reason, parse_instruction
    from selfalign.generation.prompts import prompt_hash, with_answer_start

    setup = generator(ctx, "tasks", "tasks")
    cfg: TasksConfig = setup.cfg
    builder, params, engine, model = setup.builder, setup.params, setup.engine, setup.model

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
            reason = echo_reason(text, start, prompt, [instruction])
            if reason is None and len(instruction) < cfg.min_instruction_chars:
                reason = EMPTY_INSTRUCTION if not instruction else SHORT_INSTRUCTION
            if reason is not None:
                result.rejections.append(
                    Rejection(
                        id=record.id,
                        reason=reason,
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


STAGE = model_stage(
    name="tasks",
    command="tasks",
    summary="C→I: the model writes a new coding task from each concept list",
    section=Section("tasks", TasksConfig),
    input_stage="concepts",
    record=Task,
    processor=_processor,
    units=("concept lists", "tasks"),
)
