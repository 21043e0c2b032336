"""The GRPO execution reward's throughput: completions scored per second.

Compares, with the same parallelism (--workers) on the same completions:
  (a) selfalign's execution reward as GRPO runs it: one warm sandbox pool for the
      whole training, every completion of a round in one stream, the verifier's
      static gaming check and (by default) its changed-expectation check on passes;
  (a0) the same reward with the static check only (--expectation-checks 0);
  (b) a bare, unsandboxed `python3 prog.py` subprocess per completion (the naive
      reward function: write the program, run it, read the exit code).

Goal (issue 14): (a) >= 2x (b). The completions answer the tasks of the GRPO test
fixture: right, wrong, crashing, gaming and looping ones, as a policy early in
training writes them. Rounds of --round completions alternate between the methods
so that they see the same machine load. The pool's start-up is reported apart: it
is paid once per training, not per round.

    .venv/bin/python benchmarks/reward.py [--workers 2] [--rounds 6] [--round 64]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from selfalign.curate.program import assemble
from selfalign.sandbox import SandboxConfig, build_image
from selfalign.train.completion import completion_code
from selfalign.train.data import load_training_data
from selfalign.train.execution_reward import ExecutionReward, reward_strength
from selfalign.train.sandbox_session import SandboxSession

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "grpo" / "dataset"

# How a young policy answers: mostly wrong or broken, some right, a few hostile.
SHAPES = (
    ("right", "{solution}"),
    ("right", "{solution}"),
    ("wrong", "{wrong}"),
    ("wrong", "{wrong}"),
    ("crash", "{name_def}\n    raise ValueError('no idea')\n"),
    ("syntax", "{name_def}\n    return (\n"),
    ("prints", "{solution}\nprint('debug output ' * 50)\n"),
    ("gaming", "class A:\n    def __eq__(self, other):\n        return True\n{name_def}\n"
     "    return A()\n"),
)


def completions(n: int) -> tuple[list[str], list[str], list[str]]:
    """``n`` (completion text, tests, shape) triples cycling over tasks and shapes."""
    tasks = [r for r in load_training_data(FIXTURE, "tasks").rows
             if r["task_id"] not in ("task-weak-first_char", "task-broken-double")]
    texts, tests, shapes = [], [], []
    for i in range(n):
        task = tasks[i % len(tasks)]
        shape, template = SHAPES[(i // len(tasks)) % len(SHAPES)]
        solution = task["solution"]
        header = next(line for line in solution.splitlines() if line.startswith("def "))
        wrong = solution.replace("return ", "return 1 + ", 1)
        code = template.format(solution=solution, wrong=wrong, name_def=header)
        texts.append(f"Here is my answer.\n\n```python\n{code}\n```\n")
        tests.append(task["tests"])
        shapes.append(shape)
    return texts, tests, shapes


def bare(texts: list[str], tests: list[str], workers: int, timeout: float) -> list[float]:
    """(b): one `python3 prog.py` per completion, ``workers`` at a time, no isolation."""

    def one(pair: tuple[str, str]) -> float:
        text, test = pair
        code = assemble(completion_code(text).solution, test).code
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "prog.py"
            path.write_text(code, "utf-8")
            try:
                cp = subprocess.run([sys.executable, str(path)], cwd=tmp, capture_output=True,
                                    timeout=timeout, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return 0.0
        return 1.0 if cp.returncode == 0 else 0.0

    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, zip(texts, tests, strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--round", type=int, default=64, help="completions per reward round")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--expectation-checks", type=int, default=3)
    args = ap.parse_args()
    console = Console()
    texts, tests, shapes = completions(args.round)
    console.print(f"[bold]{args.round}[/] completions per round ({dict(Counter(shapes))}), "
                  f"{args.rounds} rounds, {args.workers} workers, "
                  f"load average {os.getloadavg()[0]:.1f}")

    config = SandboxConfig(workers=args.workers, timeout_s=args.timeout, image=build_image())
    t0 = time.monotonic()
    with SandboxSession(config) as session:
        startup = time.monotonic() - t0
        full = ExecutionReward(session, strength=reward_strength(args.expectation_checks))
        static = ExecutionReward(session, strength=reward_strength(0))
        prompts = [None] * len(texts)
        full(prompts, texts, tests)  # warm-up: the first round pays for imports
        seconds: dict[str, float] = {"a": 0.0, "a0": 0.0, "b": 0.0}
        scores: dict[str, list[float | None]] = {}
        for _ in range(args.rounds):
            for name, fn in (("a", full), ("a0", static)):
                t = time.monotonic()
                scores[name] = fn(prompts, texts, tests)
                seconds[name] += time.monotonic() - t
            t = time.monotonic()
            scores["b"] = list(bare(texts, tests, args.workers, args.timeout))
            seconds["b"] += time.monotonic() - t
        gamed = full.totals.gamed // (args.rounds + 1)
        left_out = full.totals.undecided + full.totals.sandbox_errors

    total = args.rounds * len(texts)
    rate = {k: total / v for k, v in seconds.items()}
    table = Table(title=f"execution reward throughput, {args.workers} workers (one run)")
    for col in ("method", "completions", "completions/s", "(a) is", "mean reward"):
        table.add_column(col, justify="left" if col == "method" else "right")
    labels = {
        "a": f"(a) sandbox reward, static + {args.expectation_checks} expectation checks",
        "a0": "(a0) sandbox reward, static check only",
        "b": "(b) bare `python3 prog.py` per completion",
    }
    for key in ("a", "a0", "b"):
        valid = [s for s in scores[key] if s is not None]
        ratio = "1.0x" if key == "a" else f"[bold]{rate['a'] / rate[key]:.2f}x[/]"
        table.add_row(labels[key], str(total), f"{rate[key]:.1f}", ratio,
                      f"{sum(valid) / max(1, len(valid)):.3f}")
    console.print(table)
    console.print(f"pool start-up (once per training): {startup:.2f}s; gamed per round: "
                  f"{gamed} (bare python3 pays them 1.0); left out by (a) (check undecided "
                  f"or sandbox error): {left_out}; load average after: "
                  f"{os.getloadavg()[0]:.1f}; goal (a) >= 2x (b)")


if __name__ == "__main__":
    main()
