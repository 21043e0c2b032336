"""Ray executor benchmark: the same small `generate` with `--executor local` and `--executor ray`.

One Ray node on this machine (a head with every CPU), started once and timed apart;
then each round runs `selfalign generate` on a fresh run directory with the local
executor and with the Ray executor (alternating, so both see the same machine load),
real 135M model and real Docker. Goal: Ray's wall time at most 1.15x the local one
once the cluster is up (on one machine Ray can only add overhead: connecting, actor
start-up, shipping batches and results). Both runs must write the same ids.

    .venv/bin/python benchmarks/ray.py [--seeds 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from selfalign.pipeline import PIPELINE
from selfalign.records import Seed, stable_id
from selfalign.store import RunDir

ROOT = Path(__file__).resolve().parent.parent
# This script's folder comes first on sys.path and holds a `ray.py` (this file): nothing
# in this process imports Ray (the drivers are `selfalign` subprocesses), and the
# cluster helper below imports only the standard library.
sys.path.insert(0, str(ROOT / "tests"))
from ray_cluster import ray_cluster  # noqa: E402  # pyright: ignore[reportMissingImports]

SELFALIGN = str(Path(sys.executable).with_name("selfalign"))

SNIPPETS = [
    'def mean(xs):\n    """Average of a list."""\n    return sum(xs) / len(xs)',
    'def words(s):\n    """Split s into lowercase words."""\n    return s.lower().split()',
    'def fact(n):\n    """n factorial."""\n    return 1 if n < 2 else n * fact(n - 1)',
    'def is_even(n):\n    """Tell whether n is even."""\n    return n % 2 == 0',
]

# configs/demo.toml with fewer tokens, two samples and one judge preference.
CONFIG = """
[model]
backend = "transformers"
model = "embedded:smollm2-135m-instruct"
mode = "chat"

[concepts]
num_fewshot = 0
answer_prefix = "The key programming concepts of this snippet are:\\n"
temperature = 0.3
repetition_penalty = 1.0
max_tokens = 24

[tasks]
num_fewshot = 0
answer_prefix = "Write a Python {category} `"
category_weights = { function = 1.0 }
difficulty_weights = { easy = 1.0 }
max_tokens = 48

[respond]
num_fewshot = 0
answer_prefix = "```python\\n"
num_samples = 2
temperature = 0.3
max_tokens = 64
tests_prefill = true
tests_max_tokens = 32
tests_max_asserts = 1

[sandbox]
workers = 2
timeout_s = 10

[judge]
preferences = ["readability"]
max_tokens = 32

[select]
pick = "random"

[export]
plots = false
"""


def make_run(path: Path, count: int) -> RunDir:
    run = RunDir(path)
    rows = []
    for i in range(count):
        code = SNIPPETS[i % len(SNIPPETS)] + (f"\n# variant {i}" if i >= len(SNIPPETS) else "")
        rows.append(Seed(id=stable_id("seed", code), parent_id=None, code=code).to_dict())
    store = run.stage("seeds")
    store.dir.mkdir(parents=True, exist_ok=True)
    store.commit_batch(rows, 0)
    store.compact()
    store.mark_success()
    return run


def generate(run: RunDir, config: Path, env: dict[str, str], *extra: str) -> float:
    started = time.perf_counter()
    cp = subprocess.run(
        [SELFALIGN, "generate", "--run", str(run.path), "--config", str(config), *extra],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - started
    if cp.returncode != 0:
        tail = cp.stdout[-3000:] + cp.stderr[-3000:]
        raise SystemExit(f"generate {' '.join(extra)} failed:\n{tail}")
    return seconds


def ids(run: RunDir) -> dict[str, list[str]]:
    stages = [s.name for s in PIPELINE if s.in_generate and s.record is not None]
    return {name: sorted(str(r["id"]) for r in run.stage(name).read()) for name in stages}


def stage_seconds(run: RunDir) -> dict[str, float]:
    """Each stage's own seconds, from its stats.json (the rest is start-up and connecting)."""
    stages = [s.name for s in PIPELINE if s.in_generate]
    return {name: run.stage(name).load_stats().seconds for name in stages}


def main() -> None:
    parser = argparse.ArgumentParser(description="the Ray executor against the local one")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    console = Console()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        config = Path(tmp) / "bench.toml"
        config.write_text(CONFIG, "utf-8")
        with ray_cluster(head_cpus=cpus) as cluster:
            env = {**cluster.env, "COLUMNS": "200"}
            local_s: list[float] = []
            ray_s: list[float] = []
            local_stages: list[dict[str, float]] = []
            ray_stages: list[dict[str, float]] = []
            for r in range(args.rounds):
                local = make_run(Path(tmp) / f"local-{r}", args.seeds)
                remote = make_run(Path(tmp) / f"ray-{r}", args.seeds)
                local_s.append(generate(local, config, env))
                ray_s.append(
                    generate(remote, config, env, "--executor", "ray", "--ray-address",
                             cluster.address)
                )
                local_stages.append(stage_seconds(local))
                ray_stages.append(stage_seconds(remote))
                if ids(local) != ids(remote):
                    raise SystemExit(f"round {r}: the two executors wrote different ids")
                console.print(
                    f"round {r + 1}: local {local_s[-1]:.1f}s, ray {ray_s[-1]:.1f}s (same ids)"
                )
            startup = cluster.started_s
    loc, ray = statistics.median(local_s), statistics.median(ray_s)
    table = Table(
        title=f"generate, {args.seeds} seeds, {cpus} CPUs, one Ray node, "
        f"median of {args.rounds} rounds"
    )
    table.add_column("executor")
    table.add_column("wall s", justify="right")
    table.add_column("runs (s)", justify="right")
    table.add_column("vs local", justify="right")
    table.add_row("local", f"{loc:.1f}", ", ".join(f"{s:.1f}" for s in local_s), "1.00x")
    table.add_row(
        "ray (cluster up)",
        f"{ray:.1f}",
        ", ".join(f"{s:.1f}" for s in ray_s),
        f"[bold]{ray / loc:.2f}x[/bold] (goal <= 1.15x)",
    )
    table.add_row("cluster start-up (apart)", f"{startup:.1f}", "", "")
    console.print(table)
    detail = Table(title="where the time goes (seconds, median over rounds)")
    for column in ("stage", "local", "ray", "ray - local"):
        detail.add_column(column, justify="left" if column == "stage" else "right")
    for name in local_stages[0]:
        a = statistics.median(row[name] for row in local_stages)
        b = statistics.median(row[name] for row in ray_stages)
        detail.add_row(name, f"{a:.1f}", f"{b:.1f}", f"{b - a:+.1f}")
    outside_local = loc - statistics.median(sum(row.values()) for row in local_stages)
    outside_ray = ray - statistics.median(sum(row.values()) for row in ray_stages)
    detail.add_row(
        "outside the stages (start-up, connecting)",
        f"{outside_local:.1f}",
        f"{outside_ray:.1f}",
        f"{outside_ray - outside_local:+.1f}",
    )
    console.print(detail)


if __name__ == "__main__":
    main()
