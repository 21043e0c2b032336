"""Record types for every hand-off between stages.

Each stage reads one record type and writes the next. Every record has a stable
``id`` derived from its content and the parameters that made it, and the id of
its parent, so a final example can be traced back to its seed. Records are
plain dataclasses serialised as one JSON object per line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self


def stable_id(kind: str, *parts: object) -> str:
    """A short id derived from the content and the parameters that produced a record.

    The same inputs give the same id on every machine and every run, which is
    what lets a resumed stage skip work it already wrote.
    """
    payload = json.dumps([kind, *parts], sort_keys=True, ensure_ascii=False, default=str)
    return f"{kind}-{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:16]}"


@dataclass
class Record:
    """Base of every record: an id, the parent's id, and JSON (de)serialisation."""

    kind: ClassVar[str] = "record"

    id: str
    parent_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build a record from a dict, ignoring keys this version does not know.

        Raises ``ValueError`` naming the missing fields when required ones are absent.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - data.keys())
        if missing:
            raise ValueError(f"{cls.__name__} record is missing fields: {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Seed(Record):
    """A real function with a docstring, harvested from source code (stage ``seeds``)."""

    kind: ClassVar[str] = "seed"

    code: str = ""
    name: str = ""
    path: str = ""
    line: int = 0
    docstring: str = ""
    imports: list[str] = field(default_factory=list)
    source: str = ""
    language: str = "python"


@dataclass
class Concepts(Record):
    """The programming concepts a seed uses, as listed by the model (stage ``concepts``, S→C)."""

    kind: ClassVar[str] = "concepts"

    seed_id: str = ""
    seed_code: str = ""
    concepts: list[str] = field(default_factory=list)
    language: str = "python"
    raw_output: str = ""


@dataclass
class Task(Record):
    """A new coding task written from a seed's concepts (stage ``tasks``, C→I)."""

    kind: ClassVar[str] = "task"

    seed_id: str = ""
    concepts: list[str] = field(default_factory=list)
    category: str = "function"
    difficulty: str = "medium"
    language: str = "python"
    instruction: str = ""
    raw_output: str = ""


@dataclass
class Attempt(Record):
    """One sampled answer to a task: response, solution code and tests (stage ``attempts``, I→R).

    ``parse_error`` is set (and the attempt still kept) when the model's output
    could not be split cleanly into solution and tests.
    """

    kind: ClassVar[str] = "attempt"

    task_id: str = ""
    seed_id: str = ""
    sample_index: int = 0
    instruction: str = ""
    response: str = ""
    solution: str = ""
    tests: str = ""
    parse_error: str | None = None
    finish_reason: str = ""
    raw_output: str = ""


@dataclass
class Verdict(Record):
    """The sandbox's verdict on one attempt's program (stage ``verdicts``)."""

    kind: ClassVar[str] = "verdict"

    attempt_id: str = ""
    task_id: str = ""
    program_hash: str = ""
    status: str = ""
    duration_s: float = 0.0
    exit_code: int | None = None
    exception: str | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    executable: bool = False
    parse_error: str | None = None
    cached: bool = False
    """The verdict was reused from an identical program run earlier, not executed again."""
    limits_key: str = ""
    """Hash of the sandbox limits the program ran under; a cached verdict is reused only
    under the same limits."""
    sandbox_reason: str | None = None
    """Why the sandbox could not run the program (status ``sandbox_error`` only)."""
    program_notes: list[str] = field(default_factory=list)
    """What the assembly rule changed in the attempt's code (see docs/dataset.md)."""
    strength: str | None = None
    """For a pass: ``strong`` (its tests could have failed, docs/verification.md) or
    ``weak``; None when the program did not pass or the strength check is off."""
    strength_reason: str | None = None
    """The main reason of a weak verdict: ``gamed_tests``, ``vacuous_tests`` or ``weak_tests``."""
    weak_reasons: list[str] = field(default_factory=list)
    """Every reason, as ``code: kind (detail)``, e.g. ``weak_tests: null_passes``."""
    mutation_score: float | None = None
    mutants_total: int = 0
    mutants_killed: list[dict[str, Any]] = field(default_factory=list)
    mutants_survived: list[dict[str, Any]] = field(default_factory=list)
    null_status: str | None = None
    """``fails`` (good), ``passes``, ``not_applicable`` (no function) or ``not_run``."""
    expectations_ignored: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    """Static findings of the tests and the solution (gaming, vacuity)."""
    checks: int = 0
    """Checks in the tests that run and could fail (the 'most_asserts' pick rule)."""
    strength_control: str | None = None
    strength_key: str = ""
    """Hash of the strength options and sandbox limits the check ran under; a re-run under
    the same ones reuses the strength verdict."""


@dataclass
class Judgments(Record):
    """A judge model's ratings of one task's answers on the coding preferences.

    ``ratings`` has one entry per judged attempt (in ``attempt_ids`` order)::

        {"attempt_id": str, "ratings": {preference: float | None},
         "rationales": {preference: str}, "mean_rating": float | None}

    A rating is None when every judge call for that preference was rejected; the
    reason is in ``rejected``. With swap a rating is the mean over the rounds that
    were accepted. ``calls`` holds one entry per (preference, round): the order the
    attempts were shown in, the raw output, what was parsed and whether it was retried.
    """

    kind: ClassVar[str] = "judgments"

    task_id: str = ""
    judge_model: str = ""
    """The judge's backend and model (``transformers:embedded:smollm2-135m-instruct``)."""
    preferences: list[str] = field(default_factory=list)
    attempt_ids: list[str] = field(default_factory=list)
    """The judged attempts, in sample order (presentation orders index into this list)."""
    statuses: list[str] = field(default_factory=list)
    """Each judged attempt's verdict status (same order), for pairs and agreement."""
    ratings: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Per (preference, round): preference, round, order (attempt ids as shown),
    prompt_hash, raw_output, finish_reason, completion_tokens, shape, ratings (per
    shown position), reason ('' when accepted), detail, retried, and the first
    try's first_raw_output, first_reason and first_finish_reason ('' unless retried)."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """Judge calls rejected after their retry: preference, round, reason, detail."""
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """Attempts of the task not judged: attempt_id, reason (over_cap, parse_error,
    empty_response, duplicate_response), detail."""
    prompt_hash: str = ""
    """Hash of every first-try prompt of the task (rubrics, orders and texts included)."""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Example(Record):
    """One instruction-tuning example: a task with one passing answer (stage ``dataset``)."""

    kind: ClassVar[str] = "example"

    messages: list[dict[str, str]] = field(default_factory=list)
    seed_id: str = ""
    task_id: str = ""
    attempt_id: str = ""
    concepts: list[str] = field(default_factory=list)
    category: str = ""
    difficulty: str = ""
    language: str = "python"
    tests: str = ""
    pass_count: int = 0
    attempt_count: int = 0
    solution: str = ""
    """The answer's solution code (the code the dedup on code compares)."""
    verdict_id: str = ""
    checks: int = 0
    """Checks in the answer's tests that run and could fail (see docs/dataset.md)."""


@dataclass
class PreferencePair(Record):
    """A (prompt, chosen, rejected) pair from one task's answers: ``preference_source`` says
    why chosen beats rejected: ``execution`` (it passed, the other failed), ``judge``
    (rated higher), or ``both``."""

    kind: ClassVar[str] = "pair"

    prompt: str = ""
    chosen: str = ""
    rejected: str = ""
    task_id: str = ""
    chosen_attempt_id: str = ""
    rejected_attempt_id: str = ""
    chosen_status: str = ""
    rejected_status: str = ""
    preference_source: str = "execution"
    chosen_verdict: dict[str, Any] = field(default_factory=dict)
    """Summary of the chosen answer's verdict: id, status, exception, exit code, duration."""
    rejected_verdict: dict[str, Any] = field(default_factory=dict)
    """Summary of the rejected answer's verdict: id, status, exception, exit code, duration."""
    chosen_ratings: dict[str, Any] = field(default_factory=dict)
    """The judge's ratings of the chosen answer, per preference and their ``mean``
    (empty when the judge stage did not run)."""
    rejected_ratings: dict[str, Any] = field(default_factory=dict)
    """The judge's ratings of the rejected answer, likewise."""
    seed_id: str = ""
    category: str = ""
    difficulty: str = ""


RECORD_TYPES: dict[str, type[Record]] = {
    cls.kind: cls
    for cls in (Seed, Concepts, Task, Attempt, Verdict, Judgments, Example, PreferencePair)
}
