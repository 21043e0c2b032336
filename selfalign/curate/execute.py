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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfalign.curate.config import ExecuteConfig
from selfalign.curate.program import assemble
from selfalign.errors import UserError
from selfalign.records import Attempt, Task, Verdict, stable_id
from selfalign.sandbox.config import SandboxConfig
from selfalign.sandbox.verdict import is_executable
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

logger = logging.getLogger(__name__)

STAGE_NAME = "verdicts"
UNKNOWN = "unknown"
EMPTY_PROGRAM = "empty_program"
SANDBOX = Section("sandbox", SandboxConfig)
"""``[sandbox]``: the limits and workers of the pool (shared with eval and the RL reward)."""
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
        path = self._path(program_hash)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("ignoring unreadable cached verdict %s: %s", path, exc)
            return None
        if not isinstance(data, dict) or data.get("status") in (None, "sandbox_error"):
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


@dataclass
class _Executor:
    cache: VerdictCache
    pool: LazySandbox
    max_errors: int
    consecutive_errors: int = 0

    def process(self, batch: list[dict[str, Any]]) -> BatchResult:
        from selfalign.sandbox import Program

        result = BatchResult()
        planned: list[tuple[Attempt, Any]] = []
        to_run: dict[str, str] = {}
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
            program = assemble(attempt.solution, attempt.tests)
            planned.append((attempt, program))
            if self.cache.get(program.program_hash) is None:
                to_run[program.program_hash] = program.code
        fresh: set[str] = set()
        errors: dict[str, dict[str, Any]] = {}
        if to_run:
            programs = [Program(id=h, code=code) for h, code in to_run.items()]
            for r in self.pool.run(programs):
                outcome = r.to_dict()
                if r.status == "sandbox_error":
                    errors[r.id] = outcome
                    self.consecutive_errors += 1
                    if self.consecutive_errors >= self.max_errors:
                        raise SandboxBroken(
                            f"{self.consecutive_errors} programs in a row got 'sandbox_error' "
                            f"(last reason: {r.reason}); the sandbox is not working. Check it "
                            "with `selfalign sandbox build` and Docker, then run the same "
                            "command again to resume"
                        )
                    continue
                self.consecutive_errors = 0
                self.cache.put(r.id, outcome)
                fresh.add(r.id)
        hits = 0
        for attempt, program in planned:
            h = program.program_hash
            known = self.cache.get(h)
            outcome = known if known is not None else errors.get(h)
            if outcome is None:  # the pool returned nothing for it: count it as the sandbox's fault
                outcome = {"status": "sandbox_error", "exception": "SandboxError"}
                errors[h] = {**outcome, "reason": "no verdict returned"}
            cached = h not in fresh and h not in errors
            if cached:
                hits += 1
            # Executed once per batch: the other attempts with the same program reuse it.
            fresh.discard(h)
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
                sandbox_reason=errors[h].get("reason") if status == "sandbox_error" else None,
                program_notes=program.notes,
            )
            result.outputs.append(verdict)
            result.metrics[f"status_{status}"] = result.metrics.get(f"status_{status}", 0) + 1
        result.metrics["executed"] = float(len(to_run))
        result.metrics["cache_hits"] = float(hits)
        return result


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
        seeded = cache.seed_from(list(store.read()))
        ctx.state["known_verdicts"] = cache.memory
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
    uses=(SANDBOX,),
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
