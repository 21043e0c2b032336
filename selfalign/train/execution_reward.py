"""GRPO's execution reward: each completion's code with its task's own tests, in the sandbox.

TRL calls a reward function once per generation round with the prompts, the
completions and every data set column (here ``tests``) as keyword arguments, and
takes one float per completion, or ``None`` to leave a completion out.

For each completion, its solution (:func:`selfalign.train.completion.completion_code`)
and the task's tests make one program (the assembly rule of
:mod:`selfalign.curate.program`); the programs of a round go to the warm pool in one
stream. A pass is worth 1 only when the verifier (:class:`selfalign.verify.Verifier`)
vouches for it:

* its static check of the solution finds no gaming (always-equal results, reading
  the program's own file or the caller's frame, patched builtins or test framework,
  re-execution, ``sys.modules``); such a solution is scored 0 *without running*;
* the tests, run again with changed expected values, do not all still pass (a
  solution that passes whatever the tests expect reads them or returns an
  always-equal object), and the program passes again inside that check.

A gamed completion scores 0 and is counted. With ``partial_credit`` the reward is the
share of the tests' top-level asserts that pass (each assert runs as its own program
under the same rules). Exits before the end of the tests (``sys.exit(0)``,
``os._exit``) fail by the sandbox's pass rule. A program the sandbox could not run
(``sandbox_error``) runs again (``retries``), then its completion is scored ``None``
and counted, as is one whose check could not finish.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from selfalign.curate.program import assemble
from selfalign.train.completion import completion_code, completion_text, parse_module

if TYPE_CHECKING:
    from selfalign.sandbox import ExecResult, Program, SandboxConfig
    from selfalign.verify import StrengthConfig, Verification

logger = logging.getLogger(__name__)

MAX_ASSERT_PROGRAMS = 20
"""Partial credit runs at most this many asserts of a task (the first ones)."""
GAMED_KINDS = frozenset({"expected_ignored", "unreliable"})
"""Weak-test kinds that, on a fixed task's tests, only the completion can cause."""


class ProgramRunner(Protocol):
    """Runs programs and yields their verdicts (a sandbox pool, or a SandboxSession)."""

    def run(self, programs: Iterable[Program]) -> Iterator[ExecResult]: ...


def reward_strength(expectation_checks: int = 3) -> StrengthConfig:
    """The verifier's settings for rewards: the task's tests were screened once before
    training, so only what a *completion* can do to them is checked (no null
    implementation, no mutants): static gaming and changed expected values."""
    from selfalign.verify import StrengthConfig

    return StrengthConfig(null_check=False, mutants=0, expectation_checks=expectation_checks)


def split_asserts(tests: str, limit: int = MAX_ASSERT_PROGRAMS) -> list[str]:
    """One test program per top-level assert: every other top-level statement is kept, the
    other asserts are dropped. Tests with fewer than two top-level asserts stay whole."""
    tree = parse_module(tests)
    if tree is None:
        return [tests]
    asserts = [i for i, node in enumerate(tree.body) if isinstance(node, ast.Assert)]
    if len(asserts) < 2:
        return [tests]
    lines = tests.splitlines(keepends=True)
    spans = {
        i: (tree.body[i].lineno - 1, tree.body[i].end_lineno or tree.body[i].lineno)
        for i in asserts
    }
    variants: list[str] = []
    for keep in asserts[:limit]:
        drop: set[int] = set()
        for i, (a, b) in spans.items():
            if i != keep:
                drop.update(range(a, b))
        variants.append("".join(line for n, line in enumerate(lines) if n not in drop))
    return variants


@dataclass
class RewardTotals:
    """Counters of the execution reward over the whole training (written to the card)."""

    rounds: int = 0
    completions: int = 0
    programs: int = 0
    passed: int = 0
    """Completions scored 1 (every assert, with partial credit)."""
    scored: int = 0
    gamed: int = 0
    """Completions scored 0 because the verifier found that they game the tests."""
    no_code: int = 0
    sandbox_errors: int = 0
    """Completions left out (scored None): the sandbox could not run them, even again."""
    undecided: int = 0
    """Completions left out (scored None): the verifier's check could not finish."""
    uncredited: Counter[str] = field(default_factory=Counter)
    """Passes not credited for a reason that is the tests' (e.g. vacuous), by reason."""
    retried: int = 0
    sandbox_seconds: float = 0.0
    wall_seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    gaming_reasons: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["statuses"] = dict(self.statuses)
        out["gaming_reasons"] = dict(self.gaming_reasons.most_common(20))
        out["uncredited"] = dict(self.uncredited)
        out["pass_rate"] = round(self.passed / self.scored, 4) if self.scored else None
        out["sandbox_time_share"] = (
            round(self.sandbox_seconds / self.wall_seconds, 4) if self.wall_seconds else None
        )
        return out


@dataclass
class _Completion:
    """The bookkeeping of one completion within a round."""

    solution: str
    parts: int = 0
    passes: int = 0
    gamed: list[str] = field(default_factory=list)
    left_out: str | None = None  # "sandbox_error" or "undecided"


class ExecutionReward:
    """TRL reward function: run each completion's code with its task's tests in the sandbox."""

    __name__ = "execution"

    def __init__(
        self,
        runner: ProgramRunner,
        *,
        partial_credit: bool = False,
        retries: int = 1,
        strength: StrengthConfig | None = None,
        sandbox: SandboxConfig | None = None,
        log_path: Path | None = None,
    ) -> None:
        from selfalign.verify import Verifier

        self.runner = runner
        self.partial_credit = partial_credit
        self.retries = retries
        self.log_path = log_path
        config = sandbox if sandbox is not None else getattr(runner, "config", None)
        self.verifier = Verifier(self._run, strength or reward_strength(), config)
        self.totals = RewardTotals()
        self.last_scores: list[float | None] = []
        self._last_end = time.monotonic()

    def start_clock(self) -> None:
        """Measure the first round's time share from now (the start of training)."""
        self._last_end = time.monotonic()

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        tests: Sequence[str],
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        from selfalign.sandbox import Program
        from selfalign.verify import find_gaming

        round_no = self.totals.rounds
        items: list[_Completion] = []
        jobs: dict[str, tuple[int, str]] = {}  # program id -> (completion, its tests)
        programs: list[Program] = []
        for i, (completion, task_tests) in enumerate(zip(completions, tests, strict=True)):
            item = _Completion(completion_code(completion_text(completion)).solution)
            items.append(item)
            if not item.solution.strip():
                continue
            # A solution that games its tests is not worth a sandbox run.
            item.gamed = [f"{f.family}: {f.detail}" for f in find_gaming(item.solution)]
            if item.gamed:
                continue
            variants = split_asserts(task_tests) if self.partial_credit else [task_tests]
            item.parts = len(variants)
            for k, variant in enumerate(variants):
                pid = f"r{round_no}-c{i}-a{k}"
                jobs[pid] = (i, variant)
                programs.append(Program(id=pid, code=assemble(item.solution, variant).code))

        start = time.monotonic()
        results = self._run(programs)
        statuses = Counter(r.status for r in results.values())
        self._judge(items, jobs, results)
        sandbox_seconds = time.monotonic() - start
        scores = [_score(item) for item in items]
        step = getattr(columns.get("trainer_state"), "global_step", None)
        self._count(
            round_no, step, items, scores, len(programs), statuses, sandbox_seconds, log_metric
        )
        self.last_scores = scores
        return scores

    def _judge(
        self,
        items: list[_Completion],
        jobs: Mapping[str, tuple[int, str]],
        results: Mapping[str, ExecResult],
    ) -> None:
        """Fill in each completion's passes, gaming and left-out reason."""
        from selfalign.verify import Candidate

        passing = []
        for pid, (i, variant) in jobs.items():
            result = results[pid]
            if result.status == "sandbox_error":
                items[i].left_out = "sandbox_error"
            elif result.passed:
                passing.append((Candidate(pid, items[i].solution, variant), result))
        for verification in self.verifier.check(passing) if passing else []:
            item = items[jobs[verification.id][0]]
            gamed = _gamed(verification)
            if gamed:
                item.gamed.extend(gamed)
            elif any(r.kind == "undecided" for r in verification.reasons):
                item.left_out = item.left_out or "undecided"
            elif verification.strong:
                item.passes += 1
            else:
                self.totals.uncredited.update(
                    f"{r.code}:{r.kind}" for r in verification.reasons[:1]
                )

    def _count(
        self,
        round_no: int,
        step: int | None,
        items: list[_Completion],
        scores: list[float | None],
        n_programs: int,
        statuses: Counter[str],
        sandbox_seconds: float,
        log_metric: Callable[[str, float], None] | None,
    ) -> None:
        scored = [s for s in scores if s is not None]
        passed = sum(1 for s in scored if s == 1.0)
        gamed = [item for item in items if item.gamed]
        now = time.monotonic()
        wall = max(now - self._last_end, sandbox_seconds, 1e-9)
        self._last_end = now
        t = self.totals
        t.rounds += 1
        t.completions += len(items)
        t.programs += n_programs
        t.passed += passed
        t.scored += len(scored)
        t.gamed += len(gamed)
        t.no_code += sum(1 for item in items if not item.solution.strip())
        errors = sum(1 for item in items if item.left_out == "sandbox_error" and not item.gamed)
        undecided = sum(1 for item in items if item.left_out == "undecided" and not item.gamed)
        t.sandbox_errors += errors
        t.undecided += undecided
        t.sandbox_seconds += sandbox_seconds
        t.wall_seconds += wall
        t.statuses.update(statuses)
        for item in gamed:
            t.gaming_reasons.update({reason.split(":", 1)[0] for reason in item.gamed})
            logger.info("a completion games its tests: %s", "; ".join(item.gamed[:3]))
        metrics = {
            "execution/pass_rate": passed / len(scored) if scored else 0.0,
            "execution/gamed": float(len(gamed)),
            "execution/no_code": float(sum(1 for item in items if not item.solution.strip())),
            "execution/sandbox_errors": float(errors),
            "execution/undecided": float(undecided),
            "execution/sandbox_seconds": sandbox_seconds,
            "execution/sandbox_time_share": sandbox_seconds / wall,
        }
        if log_metric is not None:
            for name, value in metrics.items():
                log_metric(name, value)
        if self.log_path is not None:
            line = {
                # Under `accelerate launch` every process appends its own rounds.
                "rank": int(os.environ.get("RANK", "0")),
                "round": round_no,
                "step": step,
                "completions": len(items),
                "rewards": scores,
                **{k.split("/", 1)[1]: round(v, 4) for k, v in metrics.items()},
                "statuses": dict(statuses),
                "gamed_reasons": [item.gamed[:3] for item in gamed],
            }
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")

    def _run(self, programs: list[Program]) -> dict[str, ExecResult]:
        """Every program's verdict; sandbox errors run again, up to ``retries`` more times.

        Also the verifier's way to run its check programs, so they get the same retries.
        """
        from selfalign.sandbox import ExecResult

        results: dict[str, ExecResult] = {}
        pending = programs
        for attempt in range(self.retries + 1):
            if not pending:
                break
            if attempt:
                self.totals.retried += len(pending)
                logger.warning("running %d programs again after sandbox errors", len(pending))
            for result in self.runner.run(pending):
                results[result.id] = result
            pending = [p for p in pending if _needs_retry(results.get(p.id))]
        for prog in programs:
            if prog.id not in results:
                results[prog.id] = ExecResult.error(prog.id, "the sandbox returned no verdict")
        return results


def _gamed(verification: Verification) -> list[str]:
    """The verifier's reasons that say the solution games the tests (not that they are weak)."""
    return [
        f"{r.kind}: {r.detail}"
        for r in verification.reasons
        if r.code == "gamed_tests" or r.kind in GAMED_KINDS
    ]


def _score(item: _Completion) -> float | None:
    if item.gamed or not item.parts:
        return 0.0
    if item.left_out:
        return None
    return item.passes / item.parts


def _needs_retry(result: ExecResult | None) -> bool:
    return result is None or result.status == "sandbox_error"
