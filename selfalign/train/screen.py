"""Screening GRPO's tasks: only tests that can fail are worth a reward.

An execution reward is only as good as its tests. Before training, every task's
reference solution (the data set's ``solution``) and tests go through the verifier
(:class:`selfalign.verify.Verifier`, default strength settings) in the training's
sandbox pool, all in one stream. A task is kept when the verifier calls its tests
strong; otherwise it is skipped with the reason: ``reference_fails`` (the reference
does not pass its own tests), or the verifier's reason code and kind
(``weak_tests:null_passes``, ``weak_tests:mutants_survive``, ``vacuous_tests:...``,
``gamed_tests:...``).

A task without a reference solution gets the part of the check that needs none: its
tests run against stubs of every name they call (each returns ``None``) and must
fail (``weak_tests:null_passes`` otherwise).

Data sets exported once the verifier is wired into ``execute``/``select`` only hold
tasks with strong tests; screening them again costs a few programs per task.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from selfalign.curate.program import assemble
from selfalign.store import Rejection
from selfalign.train.completion import called_names
from selfalign.train.data import TrainingData

if TYPE_CHECKING:
    from selfalign.sandbox import ExecResult, Program, SandboxConfig
    from selfalign.train.execution_reward import ProgramRunner
    from selfalign.verify import StrengthConfig, Verification

logger = logging.getLogger(__name__)


def stub_implementation(tests: str) -> str:
    """Every name the tests call, defined as a function that returns ``None``."""
    return "\n\n".join(
        f"def {name}(*args, **kwargs):\n    return None\n" for name in sorted(called_names(tests))
    )


def _by_id(runner: ProgramRunner, programs: list[Program]) -> dict[str, ExecResult]:
    return {r.id: r for r in runner.run(programs)}


def screen_tasks(
    data: TrainingData,
    runner: ProgramRunner,
    strength: StrengthConfig | None = None,
    sandbox: SandboxConfig | None = None,
) -> dict[str, int]:
    """Drop (and count) the tasks whose tests are not strong; return the counts by reason."""
    from selfalign.sandbox import Program
    from selfalign.verify import Candidate, Verifier

    config = sandbox if sandbox is not None else getattr(runner, "config", None)
    verifier = Verifier(lambda progs: _by_id(runner, progs), strength, config)
    with_ref = [i for i, r in enumerate(data.rows) if r.get("solution", "").strip()]
    without = [i for i, r in enumerate(data.rows) if i not in set(with_ref)]
    candidates = [
        Candidate(f"task-{i}", data.rows[i]["solution"], data.rows[i]["tests"]) for i in with_ref
    ]
    reasons: dict[int, tuple[str, str]] = {}
    for i, v in zip(with_ref, verifier.verify(candidates) if candidates else [], strict=True):
        why = _reason(v)
        if why is not None:
            reasons[i] = why
    stubs = [
        Program(
            f"stub-{i}",
            assemble(stub_implementation(data.rows[i]["tests"]), data.rows[i]["tests"]).code,
        )
        for i in without
    ]
    for i, result in zip(without, [_by_id(runner, stubs).get(p.id) for p in stubs], strict=True):
        if result is not None and result.status == "pass":
            reasons[i] = (
                "weak_tests:null_passes",
                "the tests pass when every function returns None",
            )

    kept: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for i, row in enumerate(data.rows):
        if i not in reasons:
            kept.append(row)
            continue
        reason, detail = reasons[i]
        counts[reason] = counts.get(reason, 0) + 1
        data.skipped[reason] += 1
        data.rejections.append(
            Rejection(
                id=row.get("task_id") or f"task-{i}", reason=reason, record=row, detail=detail
            )
        )
    if counts:
        logger.warning("screening dropped %s of %d tasks", counts, len(data.rows))
    data.rows = kept
    return counts


def _reason(v: Verification) -> tuple[str, str] | None:
    """Why a task is not trained on, or ``None`` to keep it."""
    if v.status == "sandbox_error":
        # Not the task's fault: keep it rather than shrink the data on a sandbox hiccup.
        logger.warning("screening: sandbox error on %s; task kept", v.id)
        return None
    if not v.passed:
        return "reference_fails", f"{v.status}: {v.result.get('exception') or ''}".strip()
    if v.strong or not v.reasons:
        return None
    first = v.reasons[0]
    return f"{first.code}:{first.kind}", "; ".join(str(r) for r in v.reasons)
