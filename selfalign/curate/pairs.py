"""Preference pairs (stage ``pairs``): a passing answer beats a failing one (execution),
the best-rated answer beats the worst-rated one (judge).

Pairs are drawn from the tasks of the final data set, so they inherit its
decontamination and dedup: for each example whose task also has failing answers,
``chosen`` is the example's answer (then, when ``pairs_per_task`` > 1, the task's
other eligible passing answers in turn) and ``rejected`` a failing answer drawn
at random (seeded per task). A failing answer is one whose verdict is ``fail``,
``timeout``, ``memory`` or ``output_limit`` (a ``sandbox_error`` says nothing about
the answer), whose output parsed (unless parse errors are allowed), whose
response is not contaminated and differs from the chosen one. The source of the
preference is ``execution``, and both verdicts travel with the pair. Judge pairs
(``[pairs] sources``) are described at :func:`judge_pair`.

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
    MissingInputError,
    Processor,
    Section,
    Stage,
    StageContext,
    StageInput,
    read_stage_records,
)
from selfalign.store import Rejection

STAGE_NAME = "pairs"
NO_PAIR = "no_pair"


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


def side_ratings(group: TaskGroup, attempt_id: str) -> dict[str, float | None]:
    """The judge's ratings of one answer, per preference and their ``mean`` ({} unjudged)."""
    if group.judgment is None:
        return {}
    from selfalign.judge.ratings import mean_rating, rating

    out = {p: rating(group.judgment, attempt_id, p) for p in group.judgment.preferences}
    out["mean"] = mean_rating(group.judgment, attempt_id)
    return out


def _pair(
    example: dict[str, Any], group: TaskGroup, good: Answer, bad: Answer, source: str
) -> PreferencePair:
    return PreferencePair(
        id=stable_id("pair", good.attempt.id, bad.attempt.id),
        parent_id=str(example.get("id")),
        prompt=group.instruction,
        chosen=good.attempt.response,
        rejected=bad.attempt.response,
        task_id=group.task_id,
        chosen_attempt_id=good.attempt.id,
        rejected_attempt_id=bad.attempt.id,
        chosen_status=good.verdict.status,
        rejected_status=bad.verdict.status,
        preference_source=source,
        chosen_verdict=verdict_summary(good.verdict),
        rejected_verdict=verdict_summary(bad.verdict),
        chosen_ratings=side_ratings(group, good.attempt.id),
        rejected_ratings=side_ratings(group, bad.attempt.id),
        seed_id=str(example.get("seed_id", "")),
        category=str(example.get("category", "")),
        difficulty=str(example.get("difficulty", "")),
    )


def execution_pairs(
    example: dict[str, Any],
    group: TaskGroup,
    chosen: list[Answer],
    cfg: SelectConfig,
    pairs_cfg: PairsConfig,
    contaminated: Callable[[str], str | None],
) -> list[PreferencePair]:
    """Up to ``per_task`` pairs: a chosen answer against a failing one of the same task."""
    pairs: list[PreferencePair] = []
    for rej in failing_answers(group, cfg, contaminated):
        if len(pairs) >= pairs_cfg.per_task:
            break
        good = chosen[len(pairs) % len(chosen)]
        if rej.attempt.response.strip() == good.attempt.response.strip():
            continue
        pairs.append(_pair(example, group, good, rej, "execution"))
    return pairs


def judge_pair(
    example: dict[str, Any],
    group: TaskGroup,
    chosen: list[Answer],
    cfg: SelectConfig,
    pairs_cfg: PairsConfig,
    contaminated: Callable[[str], str | None],
) -> PreferencePair | None:
    """The best-rated answer that may be chosen against the task's lowest-rated answer.

    Only an answer the data set could keep may be chosen; the rejected one may be any
    rated answer that parsed and is not contaminated, passing or not. The source is
    ``both`` when execution agrees (the rejected answer failed), else ``judge``.
    """
    if group.judgment is None:
        return None
    from selfalign.judge.ratings import best_rated, mean_rating

    best = best_rated(group.judgment, {a.attempt.id for a in chosen})
    by_id = {a.attempt.id: a for a in group.answers}
    if best is None:
        return None
    top = mean_rating(group.judgment, best)
    lows = [
        (value, a)
        for a in group.answers
        if a.attempt.id != best
        and a.verdict.status != "sandbox_error"
        and (cfg.allow_parse_errors or not a.attempt.parse_error)
        and a.attempt.response.strip() != by_id[best].attempt.response.strip()
        and contaminated(a.attempt.response) is None
        if (value := mean_rating(group.judgment, a.attempt.id)) is not None
    ]
    if top is None or not lows:
        return None
    low_value, worst = min(lows, key=lambda item: (item[0], item[1].attempt.sample_index))
    if top - low_value < pairs_cfg.judge_min_margin or top <= low_value:
        return None
    source = "both" if worst.verdict.status in FAILING_STATUSES else "judge"
    return _pair(example, group, by_id[best], worst, source)


def build_pairs(
    example: dict[str, Any],
    group: TaskGroup,
    cfg: SelectConfig,
    pairs_cfg: PairsConfig,
    contaminated: Callable[[str], str | None],
) -> list[PreferencePair]:
    """One example's pairs: execution pairs, then the judge's pair (``[pairs] sources``).

    A judge pair equal to an execution pair is not written twice: that pair's source
    becomes ``both``.
    """
    by_attempt = {a.attempt.id: a for a in group.answers}
    first = by_attempt.get(str(example.get("attempt_id")))
    if first is None:
        return []
    chosen = [first]
    others = eligible_answers(group, cfg, contaminated).keep
    chosen += [a for a in others if a is not first]
    pairs: list[PreferencePair] = []
    if "execution" in pairs_cfg.sources:
        # The example's own answer first; more chosen answers only for more pairs.
        pool = chosen if pairs_cfg.per_task > 1 else [first]
        pairs = execution_pairs(example, group, pool, cfg, pairs_cfg, contaminated)
    if "judge" in pairs_cfg.sources:
        judged = judge_pair(example, group, chosen, cfg, pairs_cfg, contaminated)
        if judged is not None:
            same = next((p for p in pairs if p.id == judged.id), None)
            if same is not None:
                same.preference_source = "both"
            else:
                pairs.append(judged)
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
    judged = "judge" in pairs_cfg.sources
    if judged and not ctx.run.stage("judgments").is_complete():
        raise MissingInputError(
            "pairs with the 'judge' source need the 'judgments' stage: run "
            f"`selfalign judge --run {ctx.run.path}` first, or set [pairs] sources = "
            '["execution"]'
        )

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        result = BatchResult()
        for example in batch:
            group = by_task.get(str(example.get("task_id")))
            pairs = build_pairs(example, group, cfg, pairs_cfg, contaminated) if group else []
            if pairs:
                result.outputs.extend(pairs)
                for pair in pairs:
                    for key in (
                        f"rejected_{pair.rejected_status}",
                        f"source_{pair.preference_source}",
                    ):
                        result.metrics[key] = result.metrics.get(key, 0) + 1
            else:
                result.rejections.append(
                    Rejection(
                        id=str(example.get("id")),
                        reason=NO_PAIR,
                        record={"task_id": example.get("task_id")},
                        detail="no failing answer" + (", no judge pair" if judged else ""),
                    )
                )
        return result

    return process


STAGE = Stage(
    name=STAGE_NAME,
    command="pairs",
    summary="DPO preference pairs: pass beats fail (execution), best beats worst rated (judge)",
    section=Section("pairs", PairsConfig),
    # The selection's rules also judge the rejected side; its options carry a prefix here.
    uses=(Section("select", SelectConfig, option_prefix="select-"),),
    inputs=("examples",),
    optional_inputs=("judgments",),
    record=PreferencePair,
    read=_read,
    processor=_processor,
    units=("examples", "pairs"),
    distributed=False,
)
