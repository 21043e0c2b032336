"""Preference pairs from execution (stage ``pairs``): a passing answer beats a failing one.

Pairs are drawn from the tasks of the final data set, so they inherit its
decontamination and dedup: for each example whose task also has failing answers,
``chosen`` is the example's answer (then, when ``pairs_per_task`` > 1, the task's
other eligible passing answers in turn) and ``rejected`` a failing answer drawn
at random (seeded per task). A failing answer is one whose verdict is ``fail``,
``timeout``, ``memory`` or ``output_limit`` (a ``sandbox_error`` says nothing about
the answer), whose output parsed (unless parse errors are allowed), whose
response is not contaminated and differs from the chosen one. The source of the
preference is ``execution``, and both verdicts travel with the pair.

Output: :class:`~selfalign.records.PreferencePair` records in ``RUN/pairs/part-*.jsonl``
(``parent_id`` = the example's id); examples without a failing answer are listed
in ``RUN/rejected/pairs.jsonl`` as ``no_failing_attempt``. Options in ``[pairs]``;
decontamination and parse errors follow ``[select]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selfalign.curate.candidates import (
    FAILING_STATUSES,
    Answer,
    TaskGroup,
    eligible_answers,
    load_groups,
    task_rng,
    verdict_summary,
)
from selfalign.curate.config import PairsConfig, SelectConfig
from selfalign.curate.select import make_contamination_check
from selfalign.records import PreferencePair, stable_id
from selfalign.stage import (
    BatchResult,
    Processor,
    Section,
    Stage,
    StageContext,
    StageInput,
    read_stage_records,
)
from selfalign.store import Rejection

STAGE_NAME = "pairs"
NO_FAILING_ATTEMPT = "no_failing_attempt"


def failing_answers(
    group: TaskGroup, cfg: SelectConfig, contaminated: Callable[[str], str | None]
) -> list[Answer]:
    """The answers that may be the rejected side of a pair, in a seeded random order."""
    out = [
        a
        for a in group.answers
        if a.verdict.status in FAILING_STATUSES
        and (cfg.allow_parse_errors or not a.attempt.parse_error)
        and a.attempt.response.strip()
        and contaminated(a.attempt.response) is None
    ]
    task_rng(cfg.seed + 1, group.task_id).shuffle(out)
    return out


def build_pairs(
    example: dict[str, Any],
    group: TaskGroup,
    cfg: SelectConfig,
    pairs_cfg: PairsConfig,
    contaminated: Callable[[str], str | None],
) -> list[PreferencePair]:
    """At most ``per_task`` execution pairs for one example's task."""
    by_attempt = {a.attempt.id: a for a in group.answers}
    first = by_attempt.get(str(example.get("attempt_id")))
    if first is None:
        return []
    chosen = [first]
    if pairs_cfg.per_task > 1:
        others = eligible_answers(group, cfg, contaminated).keep
        chosen += [a for a in others if a is not first]
    rejected = failing_answers(group, cfg, contaminated)
    prompt = group.instruction
    pairs: list[PreferencePair] = []
    for rej in rejected:
        if len(pairs) >= pairs_cfg.per_task:
            break
        good = chosen[len(pairs) % len(chosen)]
        if rej.attempt.response.strip() == good.attempt.response.strip():
            continue
        pairs.append(
            PreferencePair(
                id=stable_id("pair", good.attempt.id, rej.attempt.id),
                parent_id=str(example.get("id")),
                prompt=prompt,
                chosen=good.attempt.response,
                rejected=rej.attempt.response,
                task_id=group.task_id,
                chosen_attempt_id=good.attempt.id,
                rejected_attempt_id=rej.attempt.id,
                chosen_status=good.verdict.status,
                rejected_status=rej.verdict.status,
                preference_source="execution",
                chosen_verdict=verdict_summary(good.verdict),
                rejected_verdict=verdict_summary(rej.verdict),
                seed_id=str(example.get("seed_id", "")),
                category=str(example.get("category", "")),
                difficulty=str(example.get("difficulty", "")),
            )
        )
    return pairs


def _read(ctx: StageContext) -> StageInput:
    if not ctx.config("pairs").sources:
        return StageInput(items=[], item_id=str, total=0)
    return read_stage_records(ctx, "examples")


def _processor(ctx: StageContext) -> Processor:
    cfg: SelectConfig = ctx.config("select")
    pairs_cfg: PairsConfig = ctx.config("pairs")
    contaminated = make_contamination_check(cfg)
    # Malformed tasks, attempts and verdicts were counted by the examples stage.
    groups, _ = load_groups(ctx.run)
    by_task = {g.task_id: g for g in groups}

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        result = BatchResult()
        for example in batch:
            group = by_task.get(str(example.get("task_id")))
            pairs = build_pairs(example, group, cfg, pairs_cfg, contaminated) if group else []
            if pairs:
                result.outputs.extend(pairs)
                for pair in pairs:
                    key = f"rejected_{pair.rejected_status}"
                    result.metrics[key] = result.metrics.get(key, 0) + 1
            else:
                result.rejections.append(
                    Rejection(
                        id=str(example.get("id")),
                        reason=NO_FAILING_ATTEMPT,
                        record={"task_id": example.get("task_id")},
                    )
                )
        return result

    return process


STAGE = Stage(
    name=STAGE_NAME,
    command="pairs",
    summary="DPO preference pairs: a passing answer beats a failing one of the same task",
    section=Section("pairs", PairsConfig),
    # The selection's rules also judge the rejected side; its options carry a prefix here.
    uses=(Section("select", SelectConfig, option_prefix="select-"),),
    inputs=("examples",),
    record=PreferencePair,
    read=_read,
    processor=_processor,
    units=("examples", "pairs"),
    distributed=False,
)
