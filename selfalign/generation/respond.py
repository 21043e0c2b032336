"""I→R: sample answers to each task and split them into response, solution and tests.

Malformed answers are kept as attempts with a `parse_error` reason (the execution
stage and the preference pairs use them) and counted as `parse_error_<reason>`.
With `tests_prefill` an answer is written in two steps (see `tests_step`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from selfalign.generation.common import NO_GENERATION, generator, model_stage
from selfalign.generation.config import RespondConfig
from selfalign.llm.base import SamplingParams
from selfalign.records import Attempt, Task, stable_id
from selfalign.stage import (
    BatchResult,
    Processor,
    Section,
    StageContext,
    parse_records,
)
from selfalign.store import Rejection

logger = logging.getLogger(__name__)



def _processor(ctx: StageContext) -> Processor:
    from selfalign.generation.parse import first_statements, parse_answer
    from selfalign.generation.prompts import prompt_hash, with_answer_start
    from selfalign.generation.tests_step import CLOSING_FENCE, FENCE, Answer, write_tests

    respond: RespondConfig = ctx.config("respond")
    setup = generator(ctx, "respond", "respond", samples=respond.num_samples)
    cfg: RespondConfig = setup.cfg
    builder, params, engine, model = setup.builder, setup.params, setup.engine, setup.model

    tests_params: SamplingParams | None = None
    if cfg.tests_prefill:
        # The tests step samples like the stage, one answer per implementation, and
        # stops at the fence that closes the tests.
        tests_params = replace(
            cfg.sampling(n=1),
            max_tokens=cfg.tests_max_tokens,
            stop=tuple(dict.fromkeys([FENCE, *builder.stop])),
        )
        # Stop the first step where the implementation's code block closes: what a
        # small model writes after it is rambling the tests step replaces.
        params = replace(params, stop=(*params.stop, CLOSING_FENCE))

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        metrics: dict[str, float] = {"generated_tokens": 0, "parse_ok": 0}
        result = BatchResult(metrics=metrics)
        tasks, result.rejections = parse_records(batch, Task)
        starts = [
            cfg.answer_start(category=t.category, difficulty=t.difficulty, language=t.language)
            for t in tasks
        ]
        prompts = [
            with_answer_start(builder.respond(t.id, t.instruction, t.category), start)
            for t, start in zip(tasks, starts, strict=True)
        ]
        generations = engine.generate(prompts, params) if prompts else []
        answers = [
            [Answer(start + g.text, g.finish_reason, g.completion_tokens, len(start)) for g in gens]
            for start, gens in zip(starts, generations, strict=True)
        ]
        if tests_params is not None:
            metrics["tests_step"] = write_tests(engine, prompts, answers, tests_params)
        for task, start, prompt, task_answers in zip(
            tasks, starts, prompts, answers, strict=True
        ):
            if not task_answers:
                result.rejections.append(Rejection(id=task.id, reason=NO_GENERATION))
                continue
            phash = prompt_hash(prompt)
            for index, answer in enumerate(task_answers):
                metrics["generated_tokens"] += answer.tokens
                # An answer that only echoes its prefix or the prompt is kept with the
                # reason as its parse error (the pairs use it as a rejected side).
                parsed = parse_answer(
                    answer.text, answer.finish_reason, prefix=start, prompt=prompt
                )
                if cfg.tests_max_asserts and parsed.tests:
                    parsed = replace(
                        parsed, tests=first_statements(parsed.tests, cfg.tests_max_asserts)
                    )
                key = f"parse_error_{parsed.parse_error}" if parsed.parse_error else "parse_ok"
                metrics[key] = metrics.get(key, 0) + 1
                id_parts: tuple[Any, ...] = (task.id, model, phash, params, index)
                if tests_params is not None:
                    id_parts += (tests_params,)
                if cfg.tests_max_asserts:
                    id_parts += (cfg.tests_max_asserts,)
                result.outputs.append(
                    Attempt(
                        id=stable_id("attempt", *id_parts),
                        parent_id=task.id,
                        task_id=task.id,
                        seed_id=task.seed_id,
                        sample_index=index,
                        instruction=task.instruction,
                        response=parsed.response,
                        solution=parsed.solution,
                        tests=parsed.tests,
                        parse_error=parsed.parse_error,
                        finish_reason=answer.finish_reason,
                        raw_output=answer.text,
                    )
                )
        return result

    return process


STAGE = model_stage(
    name="attempts",
    command="respond",
    summary="I→R: the model answers each task several times, each answer with its own tests",
    section=Section("respond", RespondConfig),
    input_stage="tasks",
    record=Attempt,
    processor=_processor,
    units=("tasks", "attempts"),
)
