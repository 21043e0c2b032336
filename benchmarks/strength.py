"""The execute stage with and without the strength check, on the same attempts.

Goal (issue 11): the stage's wall time with the check at most 1.5x without it. Both
runs use the same pool settings and no verdict cache (every program really runs);
they alternate in rounds so that both see the same machine load; the pool's start-up
is part of both, as it is of a real stage.

Workloads:
  run        the attempts of a real run (default runs/demo/attempts, from `make demo`)
  humaneval  the 164 HumanEval problems, each with its canonical solution and with a
             wrong one (half the attempts pass: far more than a model's answers do)

    .venv/bin/python benchmarks/strength.py [--run runs/demo] [--workers 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from selfalign.curate.config import ExecuteConfig
from selfalign.pipeline import run_named
from selfalign.records import Attempt, stable_id
from selfalign.sandbox import SandboxConfig, build_image
from selfalign.sandbox.humaneval import load_problems
from selfalign.store import RunDir, dumps_line
from selfalign.verify.config import StrengthConfig


def humaneval_attempts() -> list[dict]:
    rows = []
    for p in load_problems():
        tests = f"{p['test']}\n\ncheck({p['entry_point']})\n"
        for label, body in (("right", p["canonical_solution"]), ("wrong", "    return None\n")):
            aid = stable_id("attempt", p["task_id"], label)
            rows.append(
                Attempt(
                    id=aid,
                    parent_id=p["task_id"],
                    task_id=p["task_id"],
                    solution=p["prompt"] + body,
                    tests=tests,
                ).to_dict()
            )
    return rows


def run_attempts(run: Path) -> list[dict]:
    store = RunDir(run).stage("attempts")
    if not store.is_complete():
        raise SystemExit(f"{run}/attempts is not complete: run `make demo` or pass --run")
    return list(store.read())


def execute(attempts: list[dict], strength: bool, workers: int, image: str) -> tuple[float, dict]:
    folder = Path(tempfile.mkdtemp(prefix="bench-strength-"))
    try:
        run = RunDir(folder)
        store = run.stage("attempts")
        store.dir.mkdir(parents=True)
        (store.dir / "part-00000.jsonl").write_text("".join(dumps_line(r) for r in attempts))
        store.mark_success()
        configs = {
            "execute": ExecuteConfig(reuse_verdicts=False),
            "sandbox": SandboxConfig(workers=workers, image=image),
            "strength": StrengthConfig(enabled=strength),
        }
        start = time.perf_counter()
        stats = run_named(run, "execute", configs)
        return time.perf_counter() - start, stats.metrics
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/demo"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=("run", "humaneval"), default=None)
    args = parser.parse_args()
    console = Console()
    image = build_image()
    workloads = {}
    if args.only in (None, "run") and (args.run / "attempts" / "_SUCCESS").is_file():
        workloads[f"{args.run}/attempts"] = run_attempts(args.run)
    if args.only in (None, "humaneval"):
        workloads["HumanEval right + wrong"] = humaneval_attempts()
    table = Table(title=f"execute stage, {args.workers} workers, best of {args.rounds} rounds")
    for column in ("attempts", "passed", "strong", "without (s)", "with (s)", "with / without"):
        table.add_column(column, justify="left" if column == "attempts" else "right")
    for name, attempts in workloads.items():
        times: dict[bool, list[float]] = {False: [], True: []}
        metrics: dict = {}
        for _ in range(args.rounds):
            for strength in (False, True):
                seconds, m = execute(attempts, strength, args.workers, image)
                times[strength].append(seconds)
                if strength:
                    metrics = m
        plain, checked = min(times[False]), min(times[True])
        table.add_row(
            f"{name} ({len(attempts)})",
            str(metrics.get("passed", 0)),
            str(metrics.get("strength", {}).get("strong", 0)),
            f"{plain:.2f}",
            f"{checked:.2f}",
            f"{checked / plain:.2f}x",
        )
    console.print(table)


if __name__ == "__main__":
    main()
