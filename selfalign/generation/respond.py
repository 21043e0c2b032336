"""I→R: sample answers to each task and split them into response, solution and tests.

Malformed answers are kept as attempts with a `parse_error` reason (the execution
stage and the preference pairs use them) and counted as `parse_error_<reason>`.
"""

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
from selfalign.generation.config import RespondConfig
from selfalign.generation.parse import parse_answer
from selfalign.generation.prompts import PromptBuilder, prompt_hash
from selfalign.llm.base import LLM
from selfalign.llm.config import ModelConfig
from selfalign.records import Attempt, Task, stable_id
from selfalign.runner import BatchResult, ProgressSink, run_stage
from selfalign.store import Rejection, RunDir, StageStats

logger = logging.getLogger(__name__)

STAGE = "attempts"


def run_respond(
    run: RunDir,
    model_cfg: ModelConfig,
    cfg: RespondConfig,
    progress: ProgressSink | None = None,
    force: bool = False,
    llm: LLM | None = None,
) -> StageStats:
    """Run I→R over `RUN/tasks` into `RUN/attempts`, resuming an interrupted run."""
    rows, total = previous_stage_records(run, "tasks", "tasks", cfg.limit)
    builder = PromptBuilder.load(
        "respond",
        cfg.prompts_dir,
        num_fewshot=cfg.num_fewshot,
        mode=model_cfg.mode,
        seed=cfg.seed,
    )
    params = cfg.sampling(n=cfg.num_samples, extra_stop=builder.stop)
    engine = LazyLLM(model_cfg, llm)
    model = model_key(model_cfg)

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        metrics: dict[str, float] = {"generated_tokens": 0, "parse_ok": 0}
        result = BatchResult(metrics=metrics)
        tasks: list[Task] = []
        for row in batch:
            try:
                tasks.append(Task.from_dict(row))
            except (TypeError, ValueError) as exc:
                result.rejections.append(
                    Rejection(id=input_id(row), reason=MALFORMED_INPUT, record=row, detail=str(exc))
                )
        prompts = [builder.respond(t.id, t.instruction, t.category) for t in tasks]
        generations = engine.get().generate(prompts, params) if prompts else []
        for task, prompt, gens in zip(tasks, prompts, generations, strict=True):
            if not gens:
                result.rejections.append(Rejection(id=task.id, reason=NO_GENERATION))
                continue
            phash = prompt_hash(prompt)
            for index, gen in enumerate(gens):
                metrics["generated_tokens"] += gen.completion_tokens
                parsed = parse_answer(gen.text, gen.finish_reason)
                key = f"parse_error_{parsed.parse_error}" if parsed.parse_error else "parse_ok"
                metrics[key] = metrics.get(key, 0) + 1
                result.outputs.append(
                    Attempt(
                        id=stable_id("attempt", task.id, model, phash, params, index),
                        parent_id=task.id,
                        task_id=task.id,
                        seed_id=task.seed_id,
                        sample_index=index,
                        instruction=task.instruction,
                        response=parsed.response,
                        solution=parsed.solution,
                        tests=parsed.tests,
                        parse_error=parsed.parse_error,
                        finish_reason=gen.finish_reason,
                        raw_output=gen.text,
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
