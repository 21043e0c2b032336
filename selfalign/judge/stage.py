"""The judge stage (``judgments``): a judge model rates every task's answers on the coding
preferences, one call per task and preference, after ``execute``.

Input: each task with its attempts and their verdicts (passing and failing), the same
grouping selection uses. Output: one :class:`~selfalign.records.Judgments` per task
(``parent_id`` = task id), so a killed stage resumes without rating a task twice. The
judge has its own model section, ``[judge.model]`` (options ``--judge-model``,
``--judge-backend``, ...), so a run can generate with its base model and judge with
a stronger one on a server; equal to ``[model]``, the two share one loaded model.
"""

from __future__ import annotations

from typing import Any

from selfalign.curate.candidates import TaskGroup, load_groups
from selfalign.judge.config import JudgeConfig
from selfalign.judge.rate import Candidate, JudgeTask
from selfalign.llm.config import ModelConfig
from selfalign.records import Judgments
from selfalign.stage import BatchResult, Processor, Section, Stage, StageContext, StageInput
from selfalign.store import Rejection

STAGE_NAME = "judgments"
NO_PASSING_ANSWER = "no_passing_answer"
JUDGE_MODEL = Section("judge.model", ModelConfig, option_prefix="judge-", inherit="model")
"""``[judge.model]``: the judge's own model and backend; what it does not set comes from
``[model]`` (so a run judges with its own model unless told otherwise)."""


def candidates(group: TaskGroup) -> tuple[Candidate, ...]:
    """A task's answers as the judge sees them: response, verdict status, parse error."""
    return tuple(
        Candidate(
            attempt_id=a.attempt.id,
            response=a.attempt.response,
            status=a.verdict.status,
            sample_index=a.attempt.sample_index,
            parse_error=a.attempt.parse_error,
        )
        for a in group.answers
    )


def judge_task(group: TaskGroup) -> JudgeTask:
    return JudgeTask(group.task_id, group.instruction, candidates(group))


def _read(ctx: StageContext) -> StageInput:
    cfg: JudgeConfig = ctx.config("judge")
    if not cfg.enabled:
        return StageInput(items=[], item_id=lambda t: t.task_id, total=0)
    groups, rejections = load_groups(ctx.run)
    if cfg.tasks == "with_pass":
        # Only a task with a passing answer can give an example, a judge pair or a ratings
        # row; the others are counted, not judged.
        rejections += [
            Rejection(id=g.task_id, reason=NO_PASSING_ANSWER, detail="tasks = with_pass")
            for g in groups
            if not g.pass_count
        ]
        groups = [g for g in groups if g.pass_count]
    if cfg.limit:
        groups = groups[: cfg.limit]
    tasks = [judge_task(g) for g in groups]
    return StageInput(
        items=tasks, item_id=lambda t: t.task_id, total=len(tasks) or None, rejections=rejections
    )


def _processor(ctx: StageContext) -> Processor:
    from selfalign.judge.prompt import JudgePrompts
    from selfalign.judge.rate import judge_batch

    cfg: JudgeConfig = ctx.config("judge")
    model_cfg: ModelConfig = ctx.config(JUDGE_MODEL.name)
    prompts = JudgePrompts.load(cfg.prompts_dir, cfg.preferences, model_cfg.mode)
    engine = ctx.llm(JUDGE_MODEL.name)
    model_key = f"{model_cfg.backend}:{model_cfg.model}"

    def process(batch: list[JudgeTask]) -> BatchResult:
        judged = judge_batch(engine, batch, cfg, prompts, model_key)
        outputs: list[Any] = list(judged.records)
        return BatchResult(outputs=outputs, rejections=judged.rejections, metrics=judged.metrics)

    return process


STAGE = Stage(
    name=STAGE_NAME,
    command="judge",
    summary="a judge model rates each task's answers on five coding preferences",
    section=Section("judge", JudgeConfig),
    uses=(JUDGE_MODEL,),
    inputs=("attempts", "verdicts"),
    optional_inputs=("tasks",),
    record=Judgments,
    read=_read,
    processor=_processor,
    units=("tasks", "judged tasks"),
)
