"""Pass rate and executability on held-out tasks (before / after training).

GRPO writes the tasks it held out to ``OUT/heldout.jsonl``; any data set's SFT rows
serve as well. For each task the model answers the instruction, the answer's
solution runs with the task's own tests in the sandbox (the same assembly as the
execution reward), and the report gives:

* **pass rate** (``pass@1`` with one greedy sample; pass@k with more samples);
* **executability**: the share of answers that ran without an error up to their
  checks, i.e. passed or failed first on an ``AssertionError`` (the RLAIF paper's
  executability rate; :func:`selfalign.sandbox.verdict.is_executable`).

The report is written as ``summary.json`` and ``results.jsonl`` in the shape of
``selfalign eval humaneval``'s, so ``selfalign eval compare BEFORE AFTER`` lines up
two of them. :func:`executability_of_results` computes the same rate from a
HumanEval ``results.jsonl``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfalign.curate.program import assemble
from selfalign.evaluate.passk import mean_pass_at_k, pass_at_k
from selfalign.sandbox.verdict import is_executable
from selfalign.store import atomic_write_text, dumps_line, read_jsonl
from selfalign.train.completion import completion_code

if TYPE_CHECKING:
    from selfalign.llm.base import LLM
    from selfalign.sandbox import SandboxConfig
    from selfalign.train.execution_reward import ProgramRunner

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


@dataclass
class TaskEvalConfig:
    """How to evaluate on held-out tasks (the model is chosen separately)."""

    samples: int = field(default=1, metadata={"help": "Answers per task."})
    temperature: float = field(
        default=0.0, metadata={"help": "Sampling temperature; 0 is greedy decoding."}
    )
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling (temperature > 0)."})
    max_new_tokens: int = field(default=512, metadata={"help": "Token budget per answer."})
    k: list[int] = field(default_factory=lambda: [1], metadata={"help": "The k of pass@k."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate the first N tasks only."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError("samples must be at least 1")
        if self.samples > 1 and self.temperature == 0:
            raise ValueError("--samples > 1 needs a positive --temperature (greedy repeats itself)")
        bad = [k for k in self.k if not 1 <= k <= self.samples]
        if bad:
            raise ValueError(f"pass@{bad[0]} needs at least {bad[0]} samples; raise --samples")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")


@dataclass
class TaskEvalReport:
    """The summary (``summary.json``) and one record per task (``results.jsonl``)."""

    summary: dict[str, Any]
    tasks: list[dict[str, Any]] = field(default_factory=list)


def load_tasks(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Tasks (prompt, tests, task_id) from ``OUT/heldout.jsonl`` or any data set's SFT rows."""
    from selfalign.train.data import load_training_data

    p = Path(path)
    if p.is_file() and p.suffix == ".jsonl":
        rows = list(read_jsonl(p))
        if rows and "prompt" in rows[0] and "tests" in rows[0]:
            return rows[:limit] if limit else rows
    rows = load_training_data(p, "tasks").rows
    return rows[:limit] if limit else rows


def _run(runner: ProgramRunner | None, sandbox: SandboxConfig | None, programs: list[Any]) -> Any:
    if runner is not None:
        return {r.id: r for r in runner.run(programs)}
    from selfalign.sandbox import open_pool

    with open_pool(sandbox) as pool:
        return {r.id: r for r in pool.run(programs)}


def evaluate_tasks(
    llm: LLM,
    tasks: Sequence[dict[str, Any]],
    cfg: TaskEvalConfig,
    sandbox: SandboxConfig | None = None,
    *,
    model_name: str = "",
    out: Path | None = None,
    runner: ProgramRunner | None = None,
) -> TaskEvalReport:
    """Answer every task, run each answer with the task's tests, report pass@k and
    executability; write ``summary.json`` and ``results.jsonl`` to ``out``."""
    from selfalign.llm.base import SamplingParams
    from selfalign.sandbox import Program

    tasks = list(tasks[: cfg.limit] if cfg.limit else tasks)
    params = SamplingParams(
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_tokens=cfg.max_new_tokens,
        n=cfg.samples,
        seed=cfg.seed,
    )
    start = time.monotonic()
    generations = llm.generate([t["prompt"] for t in tasks], params)
    gen_seconds = time.monotonic() - start
    programs = []
    for i, (task, gens) in enumerate(zip(tasks, generations, strict=True)):
        for j, gen in enumerate(gens):
            solution = completion_code(gen.text).solution
            programs.append(Program(f"{i}#{j}", assemble(solution, task["tests"]).code))
    start = time.monotonic()
    verdicts = _run(runner, sandbox, programs)
    exec_seconds = time.monotonic() - start

    statuses: Counter[str] = Counter()
    records: list[dict[str, Any]] = []
    executable_total = 0
    for i, (task, gens) in enumerate(zip(tasks, generations, strict=True)):
        samples = []
        passed = executable = 0
        for j, gen in enumerate(gens):
            v = verdicts.get(f"{i}#{j}")
            status = v.status if v is not None else "sandbox_error"
            exception = v.exception if v is not None else None
            ok = is_executable(status, exception)
            statuses[status] += 1
            passed += status == "pass"
            executable += ok
            samples.append(
                {
                    "completion": gen.text,
                    "status": status,
                    "exception": exception,
                    "executable": ok,
                    "finish_reason": gen.finish_reason,
                }
            )
        executable_total += executable
        n = len(gens)
        records.append(
            {
                "task_id": task.get("task_id") or f"task-{i}",
                "n": n,
                "passed": passed,
                "executable": executable,
                "pass_at_k": {f"pass@{k}": pass_at_k(n, passed, k) for k in cfg.k if k <= n},
                "samples": samples,
            }
        )
    answers = sum(r["n"] for r in records)
    summary = {
        "benchmark": "heldout-tasks",
        "model": model_name,
        "problems": len(tasks),
        **{k: v for k, v in asdict(cfg).items() if k != "limit"},
        "pass_at_k": {
            f"pass@{k}": mean_pass_at_k([(r["n"], r["passed"]) for r in records], k) for k in cfg.k
        },
        "executability": executable_total / answers if answers else 0.0,
        "statuses": dict(statuses),
        "generation_seconds": round(gen_seconds, 2),
        "execution_seconds": round(exec_seconds, 2),
    }
    report = TaskEvalReport(summary=summary, tasks=records)
    if out is not None:
        write_report(report, out)
    logger.info(
        "held-out tasks %s: %s, executability %.3f",
        model_name,
        summary["pass_at_k"],
        summary["executability"],
    )
    return report


def write_report(report: TaskEvalReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RESULTS_FILE, "".join(dumps_line(r) for r in report.tasks))
    atomic_write_text(out / SUMMARY_FILE, json.dumps(report.summary, indent=2) + "\n")


def executability_of_results(path: str | Path) -> float | None:
    """Executability of a ``results.jsonl`` (HumanEval's or this module's): the share of
    samples that passed or failed first on an ``AssertionError``; ``None`` if empty."""
    file = Path(path)
    if file.is_dir():
        file = file / RESULTS_FILE
    total = executable = 0
    for record in read_jsonl(file):
        for sample in record.get("samples") or []:
            total += 1
            executable += is_executable(str(sample.get("status")), sample.get("exception"))
    return executable / total if total else None
