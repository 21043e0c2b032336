"""S→C: ask the model which programming concepts each seed uses."""

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
from selfalign.generation.config import ConceptsConfig
from selfalign.generation.parse import parse_concepts
from selfalign.generation.prompts import PromptBuilder, prompt_hash, with_answer_start
from selfalign.llm.base import LLM
from selfalign.llm.config import ModelConfig
from selfalign.records import Concepts, Seed, stable_id
from selfalign.runner import BatchResult, ProgressSink, run_stage
from selfalign.store import Rejection, RunDir, StageStats

logger = logging.getLogger(__name__)

STAGE = "concepts"
NO_CONCEPTS = "no_concepts"


def run_concepts(
    run: RunDir,
    model_cfg: ModelConfig,
    cfg: ConceptsConfig,
    progress: ProgressSink | None = None,
    force: bool = False,
    llm: LLM | None = None,
) -> StageStats:
    """Run S→C over `RUN/seeds` into `RUN/concepts`, resuming an interrupted run."""
    seeds, total = previous_stage_records(run, "seeds", "seeds", cfg.limit)
    builder = PromptBuilder.load(
        STAGE, cfg.prompts_dir, num_fewshot=cfg.num_fewshot, mode=model_cfg.mode, seed=cfg.seed
    )
    params = cfg.sampling(n=1, extra_stop=builder.stop)
    engine = LazyLLM(model_cfg, llm)
    model = model_key(model_cfg)

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        result = BatchResult(metrics={"generated_tokens": 0})
        good: list[Seed] = []
        for row in batch:
            try:
                good.append(Seed.from_dict(row))
            except (TypeError, ValueError) as exc:
                result.rejections.append(
                    Rejection(id=input_id(row), reason=MALFORMED_INPUT, record=row, detail=str(exc))
                )
        starts = [cfg.answer_start(language=s.language) for s in good]
        prompts = [
            with_answer_start(builder.concepts(s.id, s.code, s.language), start)
            for s, start in zip(good, starts, strict=True)
        ]
        generations = engine.get().generate(prompts, params) if prompts else []
        for seed, start, prompt, gens in zip(good, starts, prompts, generations, strict=True):
            if not gens:
                result.rejections.append(Rejection(id=seed.id, reason=NO_GENERATION))
                continue
            gen = gens[0]
            result.metrics["generated_tokens"] += gen.completion_tokens
            text = start + gen.text
            concepts = parse_concepts(
                text, max_concepts=cfg.max_concepts, truncated=gen.finish_reason == "length"
            )
            if not concepts:
                result.rejections.append(
                    Rejection(
                        id=seed.id,
                        reason=NO_CONCEPTS,
                        record={"seed_id": seed.id, "raw_output": text},
                        detail=f"finish_reason={gen.finish_reason}",
                    )
                )
                continue
            result.outputs.append(
                Concepts(
                    id=stable_id("concepts", seed.id, model, prompt_hash(prompt), params),
                    parent_id=seed.id,
                    seed_id=seed.id,
                    seed_code=seed.code,
                    concepts=concepts,
                    language=seed.language,
                    raw_output=text,
                )
            )
        return result

    return run_stage(
        run,
        STAGE,
        seeds,
        process,
        input_id=input_id,
        batch_size=cfg.batch_size,
        total=total,
        progress=progress,
        force=force,
    )
