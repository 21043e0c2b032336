"""C→I: write one coding task per concept list, of a sampled category and difficulty."""

from __future__ import annotations

import logging
from typing import Any

from selfalign.generation.common import (
    MALFORMED_INPUT,
    NO_GENERATION,
    LazyLLM,
    input_id,
    model_key,
    previous_stage_records,
)
from selfalign.generation.config import TasksConfig
from selfalign.generation.parse import parse_instruction
from selfalign.generation.prompts import (
    PromptBuilder,
    prompt_hash,
    request_rng,
    with_answer_start,
)
from selfalign.llm.base import LLM
from selfalign.llm.config import ModelConfig
from selfalign.records import Concepts, Task, stable_id
from selfalign.runner import BatchResult, ProgressSink, run_stage
from selfalign.store import Rejection, RunDir, StageStats

logger = logging.getLogger(__name__)

STAGE = "tasks"
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


def run_tasks(
    run: RunDir,
    model_cfg: ModelConfig,
    cfg: TasksConfig,
    progress: ProgressSink | None = None,
    force: bool = False,
    llm: LLM | None = None,
) -> StageStats:
    """Run C→I over `RUN/concepts` into `RUN/tasks`, resuming an interrupted run."""
    rows, total = previous_stage_records(run, "concepts", "concepts", cfg.limit)
    builder = PromptBuilder.load(
        STAGE, cfg.prompts_dir, num_fewshot=cfg.num_fewshot, mode=model_cfg.mode, seed=cfg.seed
    )
    params = cfg.sampling(n=1, extra_stop=builder.stop)
    engine = LazyLLM(model_cfg, llm)
    model = model_key(model_cfg)

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        result = BatchResult(metrics={"generated_tokens": 0})
        good: list[tuple[Concepts, str, str]] = []
        for row in batch:
            try:
                record = Concepts.from_dict(row)
            except (TypeError, ValueError) as exc:
                result.rejections.append(
                    Rejection(id=input_id(row), reason=MALFORMED_INPUT, record=row, detail=str(exc))
                )
                continue
            good.append((record, *sample_spec(cfg, record.id)))
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
        generations = engine.get().generate(prompts, params) if prompts else []
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

    return run_stage(
        run,
        STAGE,
        rows,
        process,
        input_id=input_id,
        batch_size=cfg.batch_size,
        total=total,
        progress=progress,
        force=force,
    )
