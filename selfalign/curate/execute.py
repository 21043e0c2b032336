"""The execution filter: every attempt's program runs in the sandbox (stage ``verdicts``).

Attempts stream from ``RUN/attempts`` through the generic stage runner: each batch
is assembled into programs (:mod:`selfalign.curate.program`), identical programs
are run once, and each attempt gets a :class:`~selfalign.records.Verdict` whose
``parent_id`` is the attempt's id. A killed run resumes with the attempts that have
no verdict yet.

Verdicts are cached by the program's hash and the sandbox limits it ran under:
the run's own earlier verdicts (kept even across ``--force``) and, when
``cache_dir`` is set, a directory shared by runs. A program whose verdict is
known never runs again; the sandbox is not even started when every program of
the run is known. ``sandbox_error`` verdicts are never cached, and a re-run runs
their attempts again (``retry_sandbox_errors``).

Executability, beside the pass rate: a program is *executable* when it ran
without an error before its checks, i.e. it passed or the first error it hit
was an ``AssertionError`` (the RLAIF paper's "executability rate": code that
runs, whether or not its answer is right).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfalign.curate.config import ExecuteConfig
from selfalign.curate.program import assemble, program_hash
from selfalign.errors import UserError
from selfalign.records import Attempt, Task, Verdict, stable_id
from selfalign.sandbox.config import SandboxConfig
from selfalign.sandbox.verdict import STATUSES, is_executable
from selfalign.stage import (
    BatchResult,
    LazySandbox,
    Processor,
    Section,
    Stage,
    StageContext,
    StageInput,
    parse_records,
    read_stage_records,
)
from selfalign.store import Rejection, StageStats, StageStore, atomic_write_text
from selfalign.verify.config import StrengthConfig

if TYPE_CHECKING:
    from selfalign.sandbox import ExecResult, Program
    from selfalign.verify import StrengthCheck, Verification, Verifier

logger = logging.getLogger(__name__)

STAGE_NAME = "verdicts"
UNKNOWN = "unknown"
EMPTY_PROGRAM = "empty_program"
SANDBOX = Section("sandbox", SandboxConfig)
"""``[sandbox]``: the limits and workers of the pool (shared with eval and the RL reward)."""
STRENGTH = Section("strength", StrengthConfig)
"""``[strength]``: how the verifier checks that a passing answer's tests could have failed."""
# Groups shown in reading order rather than alphabetically (easy before hard).
_ORDER = {"easy": 0, "medium": 1, "hard": 2, "function": 0, "class": 1, "program": 2}

# Only the limits that can change a verdict go into the cache key; the worker
# count or the pipeline depth cannot.
_LIMIT_FIELDS = (
    "backend",
    "timeout_s",
    "memory_mb",
    "output_limit_bytes",
    "tail_bytes",
    "pids_limit",
    "tmpfs_mb",
    "file_size_mb",
    "open_files",
)


class SandboxBroken(UserError, RuntimeError):
    """Too many programs in a row could not be run by the sandbox: it is broken, not the code."""


def limits_key(sandbox_cfg: SandboxConfig) -> str:
    """A short hash of the sandbox limits that can change a verdict."""
    limits = {name: getattr(sandbox_cfg, name) for name in _LIMIT_FIELDS}
    payload = json.dumps(limits, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


_RESULT_KEYS = ("status", "duration_s", "exit_code", "exception", "stdout_tail", "stderr_tail")


class VerdictCache:
    """Known verdicts by program hash, for one set of sandbox limits.

    In memory for this run (seeded with the run's earlier verdicts), and on disk in
    ``cache_dir/<limits key>/<hash[:2]>/<hash>.json`` when a shared directory is given.
    """

    def __init__(self, key: str, shared_dir: Path | None = None) -> None:
        self.key = key
        self.memory: dict[str, dict[str, Any]] = {}
        self.shared = shared_dir / key if shared_dir is not None else None

    def _path(self, program_hash: str) -> Path:
        assert self.shared is not None
        return self.shared / program_hash[:2] / f"{program_hash}.json"

    def get(self, program_hash: str) -> dict[str, Any] | None:
        hit = self.memory.get(program_hash)
        if hit is not None or self.shared is None:
            return hit
        data = _read_entry(self._path(program_hash))
        if data is None or data.get("status") in (None, "sandbox_error"):
            return None
        self.memory[program_hash] = data
        return data

    def put(self, program_hash: str, result: dict[str, Any], persist: bool = True) -> None:
        if result.get("status") == "sandbox_error":
            return
        entry = {k: result.get(k) for k in _RESULT_KEYS}
        self.memory[program_hash] = entry
        if persist and self.shared is not None:
            atomic_write_text(self._path(program_hash), json.dumps(entry, sort_keys=True) + "\n")

    def _strength_path(self, program_hash: str, key: str) -> Path:
        assert self.shared is not None
        return self.shared / f"strength-{key}" / program_hash[:2] / f"{program_hash}.json"

    def get_strength(self, program_hash: str, key: str) -> dict[str, Any] | None:
        """The strength fields of a program checked under strength options ``key``, from
        the shared directory (the run's own are in ``known_strength``)."""
        if self.shared is None:
            return None
        data = _read_entry(self._strength_path(program_hash, key))
        return data if data is not None and data.get("strength") else None

    def put_strength(self, program_hash: str, key: str, fields: dict[str, Any]) -> None:
        if self.shared is not None and fields.get("strength"):
            text = json.dumps(fields, sort_keys=True) + "\n"
            atomic_write_text(self._strength_path(program_hash, key), text)

    def seed_from(self, verdicts: list[dict[str, Any]]) -> int:
        """Remember the verdicts of an earlier run of this stage that ran under the same limits."""
        added = 0
        for v in verdicts:
            h = v.get("program_hash")
            usable = v.get("limits_key") == self.key and v.get("status") not in (
                None,
                "",
                "sandbox_error",
            )
            if usable and isinstance(h, str) and h and h not in self.memory:
                self.memory[h] = {k: v.get(k) for k in _RESULT_KEYS}
                added += 1
        return added


def _read_entry(path: Path) -> dict[str, Any] | None:
    """A cached JSON object, or None (missing, unreadable: logged, not fatal)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


@dataclass
class _Executor:
    cache: VerdictCache
    pool: LazySandbox
    max_errors: int
    verifier: Verifier | None = None
    strength_key: str = ""
    known_strength: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Strength fields of programs checked earlier under the same strength options and
    limits (by program hash): a re-run does not check them again."""
    consecutive_errors: int = 0

    def run(
        self,
        programs: list[Program],
        check: StrengthCheck | None = None,
        on_outcome: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Outcomes by program id; a program whose hash the cache knows does not run again.

        Returns the outcomes and the ids that really ran. ``sandbox_error`` outcomes are
        not cached, and too many in a row stop the stage (``SandboxBroken``).
        ``on_outcome(id, outcome)`` hears of each outcome as soon as it is known; the
        harness programs of ``check`` (answers it is given meanwhile, by
        ``on_outcome``) run in the same stream, as soon as one is full.
        """
        from selfalign.verify import check_stream

        outcomes: dict[str, dict[str, Any]] = {}
        by_hash: dict[str, list[str]] = {}
        to_run: list[Program] = []
        for prog in programs:
            h = program_hash(prog.code)
            known = self.cache.get(h)
            if known is not None:
                outcomes[prog.id] = known
            elif h not in by_hash:
                to_run.append(prog)
            by_hash.setdefault(h, []).append(prog.id)
        if on_outcome is not None:
            for pid, outcome in list(outcomes.items()):
                on_outcome(pid, outcome)
        hashes = {p.id: program_hash(p.code) for p in to_run}
        waiting = set(hashes)
        ran: set[str] = set()
        stream = check_stream(to_run, waiting, check)
        for r in self.pool.run(stream) if to_run or (check is not None and not check.done) else []:
            self._count(r)
            h = hashes.get(r.id)
            if h is None:  # a harness program's
                if check is not None:
                    check.receive(r.id, r)
                continue
            waiting.discard(r.id)
            outcome = r.to_dict()
            if r.status != "sandbox_error":
                self.cache.put(h, outcome)
            ran.add(r.id)
            for pid in by_hash[h]:
                outcomes[pid] = outcome
                if on_outcome is not None:
                    on_outcome(pid, outcome)
        if check is not None:
            check.close()  # nothing is left unless the pool failed: those are unfinished
        for prog in programs:
            # The pool returned nothing for it: the sandbox's fault, not the program's.
            outcomes.setdefault(
                prog.id,
                {"status": "sandbox_error", "exception": "SandboxError",
                 "reason": "no verdict returned"},
            )
        return outcomes, ran

    def known(self, program_hash: str) -> dict[str, Any] | None:
        """Strength fields of a program checked before (this run, or the shared cache)."""
        found = self.known_strength.get(program_hash)
        if found is None:
            found = self.cache.get_strength(program_hash, self.strength_key)
            if found is not None:
                self.known_strength[program_hash] = found
        return found

    def _count(self, r: ExecResult) -> None:
        if r.status != "sandbox_error":
            self.consecutive_errors = 0
            return
        self.consecutive_errors += 1
        if self.consecutive_errors >= self.max_errors:
            raise SandboxBroken(
                f"{self.consecutive_errors} programs in a row got 'sandbox_error' "
                f"(last reason: {r.reason}); the sandbox is not working. Check it "
                "with `selfalign sandbox build` and Docker, then run the same "
                "command again to resume"
            )

    def process(self, batch: list[dict[str, Any]]) -> BatchResult:
        from selfalign.sandbox import Program

        result = BatchResult()
        planned: list[tuple[Attempt, Any]] = []
        attempts, result.rejections = parse_records(batch, Attempt)
        for attempt in attempts:
            if not attempt.solution.strip() and not attempt.tests.strip():
                result.rejections.append(
                    Rejection(
                        id=attempt.id,
                        reason=EMPTY_PROGRAM,
                        record=attempt.to_dict(),
                        detail=attempt.parse_error or "no solution and no tests",
                    )
                )
                continue
            planned.append((attempt, assemble(attempt.solution, attempt.tests)))
        codes = {program.program_hash: program.code for _, program in planned}
        strength = _StrengthRun(self, planned, result.metrics)
        outcomes, ran = self.run(
            [Program(id=h, code=code) for h, code in codes.items()],
            strength.check,
            strength.hear if strength.check is not None else None,
        )
        executed = len(ran)
        fields = strength.fields()
        hits = 0
        for attempt, program in planned:
            h = program.program_hash
            outcome = outcomes[h]
            cached = h not in ran
            hits += cached
            # Executed once per batch: the other attempts with the same program reuse it.
            ran.discard(h)
            status = str(outcome.get("status"))
            exception = outcome.get("exception")
            verdict = Verdict(
                id=stable_id("verdict", attempt.id, h),
                parent_id=attempt.id,
                attempt_id=attempt.id,
                task_id=attempt.task_id,
                program_hash=h,
                status=status,
                duration_s=float(outcome.get("duration_s") or 0.0),
                exit_code=_int_or_none(outcome.get("exit_code")),
                exception=exception,
                stdout_tail=str(outcome.get("stdout_tail") or ""),
                stderr_tail=str(outcome.get("stderr_tail") or ""),
                executable=is_executable(status, exception),
                parse_error=attempt.parse_error,
                cached=cached,
                limits_key=self.cache.key,
                sandbox_reason=outcome.get("reason") if status == "sandbox_error" else None,
                program_notes=program.notes,
                **fields.get(attempt.id, {}),
            )
            result.outputs.append(verdict)
            result.metrics[f"status_{status}"] = result.metrics.get(f"status_{status}", 0) + 1
            if verdict.strength is not None:
                key = f"strength_{verdict.strength}"
                result.metrics[key] = result.metrics.get(key, 0) + 1
        result.metrics["executed"] = float(executed)
        result.metrics["cache_hits"] = float(hits)
        return result


class _StrengthRun:
    """The strength check of one batch, fed by the executor as outcomes come in: each
    attempt whose program passes joins the check at once (its host-side analysis runs
    while the sandboxes work through their queues), and its harness programs join the
    batch's stream of programs."""

    def __init__(
        self, executor: _Executor, planned: list[tuple[Attempt, Any]], metrics: dict[str, float]
    ) -> None:
        self.executor = executor
        self.metrics = metrics
        self.by_hash: dict[str, list[Attempt]] = {}
        for attempt, program in planned:
            self.by_hash.setdefault(program.program_hash, []).append(attempt)
        self.reused: dict[str, dict[str, Any]] = {}
        verifier = executor.verifier
        self.before = dict(verifier.stats) if verifier is not None else {}
        self.check = verifier.start([]) if verifier is not None else None

    def hear(self, h: str, outcome: dict[str, Any]) -> None:
        """A program's outcome: its passing attempts are checked (or reuse a verdict)."""
        if self.check is None or outcome.get("status") != "pass":
            return
        from selfalign.verify import Candidate

        for attempt in self.by_hash.pop(h, []):
            known = self.executor.known(h)
            if known is not None:
                self.reused[attempt.id] = known
                continue
            candidate = Candidate(attempt.id, attempt.solution, attempt.tests)
            self.check.add(candidate, _exec_result(h, outcome))

    def fields(self) -> dict[str, dict[str, Any]]:
        """The strength fields of every checked attempt, by attempt id."""
        out = dict(self.reused)
        self.metrics["strength_known"] = float(len(self.reused))
        check, verifier = self.check, self.executor.verifier
        if check is None or verifier is None or not check.verdicts_:
            return out
        for verification in check.verdicts():
            if not verification.passed:
                continue
            found = {
                **strength_fields(verification),
                "strength_key": self.executor.strength_key,
            }
            out[verification.id] = found
            self.executor.known_strength[verification.program_hash] = found
            self.executor.cache.put_strength(
                verification.program_hash, self.executor.strength_key, found
            )
        for key in ("strength_programs", "variants"):
            self.metrics[key] = float(verifier.stats[key] - self.before.get(key, 0))
        return out


STRENGTH_FIELDS = (
    "strength",
    "strength_reason",
    "weak_reasons",
    "mutation_score",
    "mutants_total",
    "mutants_killed",
    "mutants_survived",
    "null_status",
    "expectations_ignored",
    "findings",
    "checks",
    "strength_control",
    "strength_key",
)


def strength_key(cfg: StrengthConfig, limits: str) -> str:
    """What a strength verdict depends on besides the program: the options and the limits."""
    payload = json.dumps({"strength": asdict(cfg), "limits": limits}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def strength_fields(v: Verification) -> dict[str, Any]:
    """The Verdict fields of the verifier's answer (see docs/verification.md)."""
    return {
        "strength": v.strength,
        "strength_reason": v.reason,
        "weak_reasons": [str(r) for r in v.reasons],
        "mutation_score": v.mutation_score,
        "mutants_total": v.mutants_total,
        "mutants_killed": list(v.mutants_killed),
        "mutants_survived": list(v.mutants_survived),
        "null_status": v.null_status,
        "expectations_ignored": list(v.expectations_ignored),
        "findings": list(v.findings),
        "checks": v.checks,
        "strength_control": v.control,
    }


def _exec_result(pid: str, outcome: dict[str, Any]) -> ExecResult:
    from selfalign.sandbox import ExecResult

    status = str(outcome.get("status"))
    return ExecResult(
        id=pid,
        status=status if status in STATUSES else "sandbox_error",  # type: ignore[arg-type]
        duration_s=float(outcome.get("duration_s") or 0.0),
        exit_code=_int_or_none(outcome.get("exit_code")),
        exception=outcome.get("exception"),
        stdout_tail=str(outcome.get("stdout_tail") or ""),
        stderr_tail=str(outcome.get("stderr_tail") or ""),
        reason=outcome.get("reason"),
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _tasks_by_id(ctx: StageContext) -> tuple[dict[str, Task], int]:
    """The run's tasks by id (for the category and difficulty of each verdict), and how many
    task records were malformed (their verdicts are grouped as 'unknown')."""
    store = ctx.run.stage("tasks")
    if not store.is_complete():
        return {}, 0
    tasks, bad = parse_records(store.read(), Task)
    return {t.id: t for t in tasks}, len(bad)


def _rate(num: int, den: int) -> float:
    return round(num / den, 4) if den else 0.0


def _group(rows: list[tuple[str, Verdict]]) -> dict[str, dict[str, float]]:
    counts: dict[str, Counter[str]] = {}
    for key, v in rows:
        c = counts.setdefault(key, Counter())
        c["attempts"] += 1
        c["passed"] += v.status == "pass"
        c["executable"] += v.executable
    return {
        key: {
            "attempts": c["attempts"],
            "passed": c["passed"],
            "executable": c["executable"],
            "pass_rate": _rate(c["passed"], c["attempts"]),
            "executable_rate": _rate(c["executable"], c["attempts"]),
        }
        for key, c in sorted(counts.items(), key=lambda kv: (_ORDER.get(kv[0], 99), kv[0]))
    }


def execution_metrics(verdicts: list[Verdict], tasks: dict[str, Task]) -> dict[str, Any]:
    """Pass and executability rates overall and by category, difficulty and parse outcome."""
    n = len(verdicts)
    passed = sum(v.status == "pass" for v in verdicts)
    executable = sum(v.executable for v in verdicts)
    task_pass: dict[str, bool] = {}
    for v in verdicts:
        task_pass[v.task_id] = task_pass.get(v.task_id, False) or v.status == "pass"

    def attr(v: Verdict, name: str) -> str:
        task = tasks.get(v.task_id)
        return str(getattr(task, name)) if task is not None else UNKNOWN

    return {
        "attempts": n,
        "passed": passed,
        "executable": executable,
        "pass_rate": _rate(passed, n),
        "executable_rate": _rate(executable, n),
        "tasks": len(task_pass),
        "tasks_with_pass": sum(task_pass.values()),
        "task_pass_rate": _rate(sum(task_pass.values()), len(task_pass)),
        "by_status": dict(sorted(Counter(v.status for v in verdicts).items())),
        "by_category": _group([(attr(v, "category"), v) for v in verdicts]),
        "by_difficulty": _group([(attr(v, "difficulty"), v) for v in verdicts]),
        "by_parse_outcome": _group(
            [("parse_error" if v.parse_error else "parsed", v) for v in verdicts]
        ),
        "mean_duration_s": round(sum(v.duration_s for v in verdicts) / n, 4) if n else 0.0,
        "strength": strength_metrics(verdicts),
    }


def strength_metrics(verdicts: list[Verdict]) -> dict[str, Any]:
    """The strength funnel of the passing answers: checked, strong, weak by reason code and
    kind, and a histogram of mutation scores (tenths)."""
    checked = [v for v in verdicts if v.status == "pass" and v.strength is not None]
    kinds: Counter[str] = Counter()
    for v in checked:
        if v.strength != "strong":
            # "weak_tests: null_passes (detail)" -> "weak_tests: null_passes"
            kinds.update({r.split(" (")[0] for r in v.weak_reasons})
    scores = [v.mutation_score for v in checked if v.mutation_score is not None]
    histogram = Counter(min(int(score * 10), 9) for score in scores)
    return {
        "passed": sum(v.status == "pass" for v in verdicts),
        "checked": len(checked),
        "strong": sum(v.strength == "strong" for v in checked),
        "weak_by_code": dict(
            sorted(Counter(str(v.strength_reason) for v in checked if v.strength == "weak").items())
        ),
        "weak_by_reason": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
        "mutation_score_histogram": {f"{b / 10:.1f}": histogram.get(b, 0) for b in range(10)},
        "mean_mutation_score": round(sum(scores) / len(scores), 4) if scores else None,
    }


def _prepare(ctx: StageContext) -> None:
    """Known verdicts of earlier runs into the cache (read before a --force reset deletes
    them: a forced re-run never executes a program whose verdict is known), and the
    ``sandbox_error`` verdicts removed so that their attempts run again."""
    cfg: ExecuteConfig = ctx.config("execute")
    store = ctx.run.stage(STAGE_NAME)
    if not store.exists():
        return
    key = limits_key(ctx.config("sandbox"))
    if cfg.reuse_verdicts:
        cache = VerdictCache(key)
        earlier = list(store.read())
        seeded = cache.seed_from(earlier)
        ctx.state["known_verdicts"] = cache.memory
        same = strength_key(ctx.config("strength"), key)
        ctx.state["known_strength"] = {
            v["program_hash"]: {k: v.get(k) for k in STRENGTH_FIELDS}
            for v in earlier
            if v.get("strength_key") == same and v.get("strength") is not None
        }
        logger.info("verdicts: %d known program verdicts from earlier runs", seeded)
    if cfg.retry_sandbox_errors and not ctx.force:
        retried = store.remove(
            str(r.get("id")) for r in store.read() if r.get("status") == "sandbox_error"
        )
        if retried:
            store.clear_success()
            logger.info("verdicts: running %d attempts again that got sandbox_error", retried)


def _read(ctx: StageContext) -> StageInput:
    return read_stage_records(ctx, "attempts")


def _processor(ctx: StageContext) -> Processor:
    cfg: ExecuteConfig = ctx.config("execute")
    key = limits_key(ctx.config("sandbox"))
    shared = Path(cfg.cache_dir).expanduser() if cfg.cache_dir and cfg.reuse_verdicts else None
    cache = VerdictCache(key, shared)
    cache.memory.update(ctx.state.get("known_verdicts", {}))
    executor = _Executor(
        cache=cache, pool=ctx.sandbox(), max_errors=cfg.max_consecutive_sandbox_errors
    )
    strength: StrengthConfig = ctx.config("strength")
    if strength.enabled:
        from selfalign.verify import Verifier, pool_runner

        # Its harness programs join each batch's stream of programs (_Executor.run).
        executor.verifier = Verifier(pool_runner(executor.pool), strength, ctx.config("sandbox"))
        executor.strength_key = strength_key(strength, key)
        executor.known_strength = dict(ctx.state.get("known_strength", {}))
    return executor.process


def _finalize(ctx: StageContext, store: StageStore, stats: StageStats) -> None:
    verdicts, bad = parse_records(store.read(), Verdict)
    tasks, bad_tasks = _tasks_by_id(ctx)
    stats.metrics.update(execution_metrics(verdicts, tasks))
    stats.metrics["limits_key"] = limits_key(ctx.config("sandbox"))
    stats.metrics["malformed_task_records"] = bad_tasks
    if bad:
        logger.warning("verdicts: %d written verdicts do not parse", len(bad))


def _report(stats: StageStats) -> list[Any]:
    from selfalign.curate.cli import execute_report

    return execute_report(stats)


STAGE = Stage(
    name=STAGE_NAME,
    command="execute",
    summary="every answer runs with its own tests in the sandbox: pass, fail, timeout, memory",
    section=Section("execute", ExecuteConfig),
    uses=(SANDBOX, STRENGTH),
    inputs=("attempts",),
    optional_inputs=("tasks",),
    record=Verdict,
    read=_read,
    processor=_processor,
    finalize=_finalize,
    prepare=_prepare,
    units=("attempts", "verdicts"),
    report=_report,
)
