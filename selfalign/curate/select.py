"""Selection (stage ``dataset``): one passing answer per task, then decontamination and dedup.

Whole-dataset work: it reads every task, attempt and verdict of the run at once
(:func:`~selfalign.curate.candidates.load_groups`). Per task (in batches, through
the stage runner, so a kill resumes): drop tasks without a passing answer
(``no_passing_attempt``), with a benchmark-contaminated instruction
(``contaminated``), whose passing answers all failed to parse (``parse_error``),
have vacuous tests (``vacuous_tests``) or contaminated responses
(``contaminated``); then pick one answer by the configured rule. Once every
task is done, exact then MinHash near-duplicates are removed, in this order, on
instructions, responses and solution code (``duplicate_instruction``,
``near_duplicate_instruction``, ``duplicate_response``, ``near_duplicate_response``,
``duplicate_code``, ``near_duplicate_code``); the first example in run order is kept.

Output: :class:`~selfalign.records.Example` records in ``RUN/examples/part-*.jsonl``
(``parent_id`` = task id), every dropped task in ``RUN/rejected/examples.jsonl``.
The preference pairs (:mod:`selfalign.curate.pairs`) are a stage of their own.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfalign.curate.candidates import (
    TaskGroup,
    eligible_answers,
    load_groups,
    pick,
)
from selfalign.curate.config import SelectConfig
from selfalign.records import Example, stable_id
from selfalign.stage import (
    BatchResult,
    MissingInputError,
    Processor,
    Section,
    Stage,
    StageContext,
    StageInput,
)
from selfalign.store import Rejection, StageStats, StageStore, count_reasons

logger = logging.getLogger(__name__)

STAGE_NAME = "examples"
DEDUP_FIELDS = ("instruction", "response", "code")
SELECT = Section("select", SelectConfig)
"""``[select]``: also read by the pairs stage (decontamination, parse errors, the seed)."""


def make_contamination_check(cfg: SelectConfig) -> Callable[[str], str | None]:
    """``text -> match or None`` against HumanEval and the benchmark files (or never, if off)."""
    if not cfg.decontaminate or not (cfg.humaneval or cfg.benchmark_files):
        return lambda text: None
    from selfalign.decontam import Decontaminator

    decon = Decontaminator.load(
        humaneval=cfg.humaneval,
        benchmark_files=[Path(p) for p in cfg.benchmark_files],
        ngram=cfg.decontam_ngram,
    )
    return decon.match


def build_example(group: TaskGroup, chosen: Any) -> Example:
    """The instruction-tuning example of a task: its instruction and the chosen answer."""
    attempt = chosen.attempt
    task = group.task
    return Example(
        id=stable_id("example", group.task_id, attempt.id),
        parent_id=group.task_id,
        messages=[
            {"role": "user", "content": group.instruction},
            {"role": "assistant", "content": attempt.response},
        ],
        seed_id=attempt.seed_id or (task.seed_id if task else ""),
        task_id=group.task_id,
        attempt_id=attempt.id,
        concepts=list(task.concepts) if task else [],
        category=group.attr("category"),
        difficulty=group.attr("difficulty"),
        language=group.attr("language", "python"),
        tests=attempt.tests,
        pass_count=group.pass_count,
        attempt_count=len(group.answers),
        solution=attempt.solution,
        verdict_id=chosen.verdict.id,
        checks=chosen.verdict.checks or (chosen.analysis.checks if chosen.analysis else 0),
    )


class _Selector:
    def __init__(self, cfg: SelectConfig, contaminated: Callable[[str], str | None]) -> None:
        self.cfg = cfg
        self.contaminated = contaminated

    def process(self, batch: list[TaskGroup]) -> BatchResult:
        result = BatchResult()
        counts: Counter[str] = Counter()
        for group in batch:
            counts["attempts"] += len(group.answers)
            counts["passing_answers"] += group.pass_count
            # The instruction is checked first (only where it matters: a task with a pass).
            match = self.contaminated(group.instruction) if group.pass_count else None
            if match is not None:
                result.rejections.append(_reject(group, "contaminated", f"instruction: {match}"))
                continue
            eligible = eligible_answers(group, self.cfg, self.contaminated)
            counts.update(eligible.counts)
            if eligible.reason is not None:
                result.rejections.append(_reject(group, eligible.reason, eligible.detail))
                continue
            chosen = pick(
                eligible.keep, self.cfg.pick, self.cfg.seed, group.task_id, group.judgment
            )
            result.outputs.append(build_example(group, chosen))
        result.metrics = {k: float(v) for k, v in counts.items()}
        return result


def _reject(group: TaskGroup, reason: str, detail: str) -> Rejection:
    record = {"task_id": group.task_id, "instruction": group.instruction}
    return Rejection(id=group.task_id, reason=reason, record=record, detail=detail)


def _texts(example: dict[str, Any], kind: str) -> str:
    if kind == "code":
        return str(example.get("solution", ""))
    messages = example.get("messages") or []
    role = "user" if kind == "instruction" else "assistant"
    return next((str(m.get("content", "")) for m in messages if m.get("role") == role), "")


def dedup_examples(
    examples: list[dict[str, Any]], cfg: SelectConfig
) -> tuple[list[dict[str, Any]], list[Rejection]]:
    """Exact then near-duplicate removal on instructions, responses and code, in that order."""
    from selfalign.dedup import exact_duplicates, near_duplicates

    kept = list(examples)
    rejections: list[Rejection] = []
    by_id = {e["id"]: e for e in examples}
    for kind in DEDUP_FIELDS:
        for near in (False, True):
            items = [(e["id"], _texts(e, kind)) for e in kept]
            items = [(i, t) for i, t in items if t.strip()]
            if near:
                dropped = near_duplicates(
                    items,
                    num_perm=cfg.minhash_num_perm,
                    threshold=cfg.minhash_threshold,
                    ngram=cfg.minhash_ngram,
                    workers=cfg.dedup_workers,
                    # Code is compared as tokens with identifiers normalised (a renamed
                    # clone is a duplicate); instructions and responses as words.
                    shingles="code" if kind == "code" else "words",
                )
            else:
                dropped = exact_duplicates(items)
            if not dropped:
                continue
            reason = f"{'near_duplicate' if near else 'duplicate'}_{kind}"
            for drop_id, keep_id in dropped.items():
                ex = by_id[drop_id]
                rejections.append(
                    Rejection(
                        id=str(ex.get("parent_id")),
                        reason=reason,
                        record=ex,
                        detail=f"{kind} matches example {keep_id} "
                        f"(task {by_id[keep_id].get('parent_id')})",
                    )
                )
            kept = [e for e in kept if e["id"] not in dropped]
    return kept, rejections


def _read(ctx: StageContext) -> StageInput:
    groups, malformed = load_groups(ctx.run)
    return StageInput(
        items=groups, item_id=lambda g: g.task_id, total=len(groups) or None, rejections=malformed
    )


def needs_judgments(ctx: StageContext, cfg: SelectConfig) -> None:
    """The judge's pick rule and rating threshold need the judgments stage."""
    uses = cfg.pick == "judge" or cfg.min_instruction_following > 0
    if uses and not ctx.run.stage("judgments").is_complete():
        raise MissingInputError(
            "select with pick = judge or min_instruction_following needs the 'judgments' "
            f"stage: run `selfalign judge --run {ctx.run.path}` first"
        )


def _processor(ctx: StageContext) -> Processor:
    cfg: SelectConfig = ctx.config("select")
    needs_judgments(ctx, cfg)
    return _Selector(cfg, make_contamination_check(cfg)).process


def _finalize(ctx: StageContext, store: StageStore, stats: StageStats) -> None:
    cfg: SelectConfig = ctx.config("select")
    examples = list(store.read())
    if cfg.dedup:
        kept, rejections = dedup_examples(examples, cfg)
        store.drop(rejections)
    else:
        kept = examples
    stats.written = len(kept)
    stats.dropped = dict(count_reasons(store.read_rejected()))
    stats.metrics["examples"] = len(kept)
    stats.metrics["config"] = {"pick": cfg.pick, "seed": cfg.seed}


STAGE = Stage(
    name=STAGE_NAME,
    command="select",
    summary="one strong passing answer per task; contamination and duplicates dropped",
    section=SELECT,
    inputs=("attempts", "verdicts"),
    optional_inputs=("tasks", "judgments"),
    record=Example,
    read=_read,
    processor=_processor,
    finalize=_finalize,
    units=("tasks", "examples"),
    distributed=False,
)
