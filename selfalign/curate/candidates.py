"""Each task with its attempts and their verdicts, and which passing answers may be kept.

Selection is whole-dataset work: :func:`load_groups` reads every task, attempt
and verdict of the run at once (only the fields selection needs are kept).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from selfalign.curate.config import SelectConfig
from selfalign.records import Attempt, Judgments, Task, Verdict
from selfalign.stage import parse_records
from selfalign.store import Rejection, RunDir
from selfalign.verify.config import REASON_CODES
from selfalign.verify.static_tests import TestAnalysis, analyse_tests

logger = logging.getLogger(__name__)

FAILING_STATUSES = ("fail", "timeout", "memory", "output_limit")
"""Statuses that make an answer a *rejected* side of a pair (``sandbox_error`` says nothing)."""


@dataclass
class Answer:
    """One attempt with its verdict (and, once analysed, its tests' analysis)."""

    attempt: Attempt
    verdict: Verdict
    analysis: TestAnalysis | None = None

    @property
    def passed(self) -> bool:
        return self.verdict.status == "pass"


@dataclass
class TaskGroup:
    """A task and every answer that has a verdict, in sample order."""

    task_id: str
    task: Task | None
    answers: list[Answer] = field(default_factory=list)
    judgment: Judgments | None = None
    """The judge's ratings of the task's answers, when the judge stage has run."""

    @property
    def instruction(self) -> str:
        if self.task is not None and self.task.instruction:
            return self.task.instruction
        return self.answers[0].attempt.instruction if self.answers else ""

    @property
    def pass_count(self) -> int:
        return sum(a.passed for a in self.answers)

    def attr(self, name: str, default: str = "unknown") -> str:
        return str(getattr(self.task, name)) if self.task is not None else default


def _parsed(run: RunDir, stage: str, record_type: type, bad: list[Rejection]) -> list:
    store = run.stage(stage)
    records, rejections = parse_records(store.read(), record_type) if store.exists() else ([], [])
    for rejection in rejections:
        rejection.detail = f"{stage}: {rejection.detail}"
    bad.extend(rejections)
    return records


def load_groups(run: RunDir) -> tuple[list[TaskGroup], list[Rejection]]:
    """Every task that has at least one verdict, in the order its attempts were written,
    and a ``malformed_input`` rejection for each task, attempt or verdict that does not parse.
    """
    bad: list[Rejection] = []
    verdicts = {v.attempt_id: v for v in _parsed(run, "verdicts", Verdict, bad)}
    tasks = {t.id: t for t in _parsed(run, "tasks", Task, bad)}
    judged = run.stage("judgments").is_complete()
    judgments = {j.task_id: j for j in _parsed(run, "judgments", Judgments, bad)} if judged else {}
    groups: dict[str, TaskGroup] = {}
    for attempt in _parsed(run, "attempts", Attempt, bad):
        verdict = verdicts.get(attempt.id)
        if verdict is None:
            continue
        attempt.raw_output = ""  # not needed; can be large
        task_id = attempt.task_id or str(attempt.parent_id)
        group = groups.get(task_id)
        if group is None:
            group = TaskGroup(task_id, tasks.get(task_id), judgment=judgments.get(task_id))
            groups[task_id] = group
        group.answers.append(Answer(attempt, verdict))
    for group in groups.values():
        group.answers.sort(key=lambda a: (a.attempt.sample_index, a.attempt.id))
    return list(groups.values()), bad


@dataclass
class Eligibility:
    """The passing answers that may be kept, or the reason none may."""

    keep: list[Answer]
    reason: str | None = None
    detail: str = ""
    counts: Counter[str] = field(default_factory=Counter)


def eligible_answers(
    group: TaskGroup, cfg: SelectConfig, contaminated: Callable[[str], str | None]
) -> Eligibility:
    """Filter a task's passing answers: parse errors, tests that do not prove the answer
    (the verifier's strength: weak, gamed or vacuous tests), a low instruction-following
    rating (when asked for), contaminated responses.

    The reason is the first filter that left nothing (``no_passing_attempt``,
    ``parse_error``, ``gamed_tests`` / ``vacuous_tests`` / ``weak_tests``,
    ``low_instruction_following`` or ``contaminated``).
    """
    counts: Counter[str] = Counter()
    passing = [a for a in group.answers if a.passed]
    if not passing:
        statuses = Counter(a.verdict.status for a in group.answers)
        detail = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
        return Eligibility([], "no_passing_attempt", detail, counts)
    keep = passing
    if not cfg.allow_parse_errors:
        keep = [a for a in passing if not a.attempt.parse_error]
        counts["parse_error_answers"] += len(passing) - len(keep)
        if not keep:
            return Eligibility([], "parse_error", passing[0].attempt.parse_error or "", counts)
    weak = [a for a in keep if a.verdict.strength not in (None, "strong")]
    counts["weak_answers"] += len(weak)
    if weak and len(weak) == len(keep):
        codes = {a.verdict.strength_reason for a in weak}
        reason = next((c for c in REASON_CODES if c in codes), "weak_tests")
        details = sorted({r for a in weak for r in a.verdict.weak_reasons})
        return Eligibility([], reason, "; ".join(details), counts)
    keep = [a for a in keep if a not in weak]
    for answer in keep:
        if answer.analysis is None:
            answer.analysis = analyse_tests(answer.attempt.tests, answer.attempt.solution)
    if cfg.check_vacuous:
        # Verdicts without a strength (the check was off) still meet the static rules.
        vacuous = [
            a for a in keep if a.verdict.strength is None and a.analysis and a.analysis.vacuous
        ]
        counts["vacuous_answers"] += len(vacuous)
        if vacuous and len(vacuous) == len(keep):
            reasons = sorted({str(a.analysis.vacuous_reason) for a in vacuous if a.analysis})
            return Eligibility([], "vacuous_tests", "; ".join(reasons), counts)
        keep = [a for a in keep if a not in vacuous]
    if cfg.min_instruction_following and group.judgment is not None:
        from selfalign.judge.ratings import rating

        # An answer the judge could not rate is kept (and counted): a failed judgment says
        # nothing about the answer.
        low = []
        for answer in keep:
            value = rating(group.judgment, answer.attempt.id, "instruction_following")
            if value is None:
                counts["unrated_answers"] += 1
            elif value < cfg.min_instruction_following:
                low.append(answer)
        counts["low_instruction_following_answers"] += len(low)
        if low and len(low) == len(keep):
            detail = f"instruction following below {cfg.min_instruction_following:g}"
            return Eligibility([], "low_instruction_following", detail, counts)
        keep = [a for a in keep if a not in low]
    clean: list[Answer] = []
    first_match = ""
    for answer in keep:
        match = contaminated(answer.attempt.response)
        if match is None:
            clean.append(answer)
        else:
            first_match = first_match or match
            counts["contaminated_answers"] += 1
    if not clean:
        return Eligibility([], "contaminated", f"response: {first_match}", counts)
    return Eligibility(clean, None, "", counts)


def task_rng(seed: int, task_id: str) -> random.Random:
    """A random generator per task: the pick does not depend on batch order or resumes."""
    return random.Random(f"{seed}:{task_id}")


def pick(
    answers: list[Answer],
    rule: str,
    seed: int,
    task_id: str,
    judgment: Judgments | None = None,
) -> Answer:
    """One answer by the configured rule: seeded ``random``, ``shortest``, ``most_asserts``,
    or ``judge`` (the best mean rating; the seeded random pick when none is rated)."""
    if rule == "judge" and judgment is not None:
        from selfalign.judge.ratings import best_rated

        best = best_rated(judgment, {a.attempt.id for a in answers})
        if best is not None:
            return next(a for a in answers if a.attempt.id == best)
    if rule == "shortest":
        return min(answers, key=lambda a: (len(a.attempt.response), a.attempt.sample_index))
    if rule == "most_asserts":
        return min(
            answers,
            key=lambda a: (
                -(a.verdict.checks or (a.analysis.checks if a.analysis else 0)),
                len(a.attempt.response),
                a.attempt.sample_index,
            ),
        )
    return task_rng(seed, task_id).choice(answers)


def verdict_summary(v: Verdict) -> dict[str, object]:
    """The part of a verdict a preference pair carries."""
    return {
        "id": v.id,
        "status": v.status,
        "exception": v.exception or "",
        "exit_code": -1 if v.exit_code is None else int(v.exit_code),
        "duration_s": float(v.duration_s),
    }
