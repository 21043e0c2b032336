"""S→C: ask the model which programming concepts each seed uses (stage ``concepts``)."""

from __future__ import annotations

import logging
from typing import Any

from selfalign.generation.common import NO_GENERATION, generator, model_stage
from selfalign.generation.config import ConceptsConfig
from selfalign.records import Concepts, Seed, stable_id
from selfalign.stage import (
    BatchResult,
    Processor,
    Section,
    StageContext,
    parse_records,
)
from selfalign.store import Rejection

logger = logging.getLogger(__name__)

NO_CONCEPTS = "no_concepts"



def _processor(ctx: StageContext) -> Processor:
    from selfalign.generation.parse import echo_reason, parse_concepts
    from selfalign.generation.prompts import prompt_hash, with_answer_start

    setup = generator(ctx, "concepts", "concepts")
    cfg: ConceptsConfig = setup.cfg
    builder, params, engine, model = setup.builder, setup.params, setup.engine, setup.model

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        result = BatchResult(metrics={"generated_tokens": 0})
        seeds, result.rejections = parse_records(batch, Seed)
        starts = [cfg.answer_start(language=s.language) for s in seeds]
        prompts = [
            with_answer_start(builder.concepts(s.id, s.code, s.language), start)
            for s, start in zip(seeds, starts, strict=True)
        ]
        generations = engine.generate(prompts, params) if prompts else []
        for seed, start, prompt, gens in zip(seeds, starts, prompts, generations, strict=True):
            if not gens:
                result.rejections.append(Rejection(id=seed.id, reason=NO_GENERATION))
                continue
            gen = gens[0]
            result.metrics["generated_tokens"] += gen.completion_tokens
            text = start + gen.text
            concepts = parse_concepts(
                text, max_concepts=cfg.max_concepts, truncated=gen.finish_reason == "length"
            )
            # An output that only repeats its prefix or prompt is no concept list.
            reason = echo_reason(text, start, prompt, concepts) or (
                None if concepts else NO_CONCEPTS
            )
            if reason is not None:
                result.rejections.append(
                    Rejection(
                        id=seed.id,
                        reason=reason,
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

    return process


STAGE = model_stage(
    name="concepts",
    command="concepts",
    summary="S→C: the model lists the programming concepts of each seed",
    section=Section("concepts", ConceptsConfig),
    input_stage="seeds",
    record=Concepts,
    processor=_processor,
    units=("seeds", "concept lists"),
)
