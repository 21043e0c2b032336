"""Sandbox throughput: programs per second on HumanEval programs.

Compares, with the same parallelism (--workers):
  (a) selfalign's warm pool (fork per job from a running interpreter, in containers),
  (b) a bare, unsandboxed `python3 prog.py` subprocess per program,
  (c) `docker run --rm` of the same image per program.

Goals (issue 4): (a) >= 1.5x (b) and (a) >= 10x (c). (c) is so slow that it runs on
a sample (--docker-run-sample programs); its rate is per program all the same.

    .venv/bin/python benchmarks/sandbox.py [--workers N] [--programs 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rich.console import Console
from rich.table import Table

from selfalign.sandbox import Program, SandboxConfig, build_image, open_pool
from selfalign.sandbox.humaneval import canonical_programs


def workload(n: int) -> list[Program]:
    base = canonical_programs()
    return [Program(f"{base[i % len(base)].id}#{i}", base[i % len(base)].code) for i in range(n)]


def bench_a_and_b(progs: list[Program], workers: int, image: str, python: str,
                  rounds: int) -> tuple[float, Counter[str], float, float, Counter[str]]:
    """(a) and (b), alternated in rounds so that both see the same machine load (a
    shared machine's load drifts over minutes); the pool's start-up is reported
    apart, since a warm pool is started once per run of a stage."""
    t0 = time.perf_counter()
    a_time = b_time = 0.0
    a_counts: Counter[str] = Counter()
    b_counts: Counter[str] = Counter()
    with open_pool(SandboxConfig(workers=workers, image=image)) as pool:
        startup = time.perf_counter() - t0
        size = -(-len(progs) // rounds)
        for start in range(0, len(progs), size):
            chunk = progs[start:start + size]
            t1 = time.perf_counter()
            a_counts.update(r.status for r in pool.run(chunk))
            a_time += time.perf_counter() - t1
            t2 = time.perf_counter()
            b_counts.update(bench_bare(chunk, workers, python)[1])
            b_time += time.perf_counter() - t2
    return len(progs) / a_time, a_counts, startup, len(progs) / b_time, b_counts


def _threaded(progs: list[Program], workers: int,
              one: Callable[[int, Program], bool]) -> tuple[float, Counter[str]]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        ok = list(ex.map(lambda a: one(*a), enumerate(progs)))
    elapsed = time.perf_counter() - t0
    return len(progs) / elapsed, Counter("pass" if x else "fail" for x in ok)


def bench_bare(progs: list[Program], workers: int, python: str) -> tuple[float, Counter[str]]:
    tmp = tempfile.mkdtemp(prefix="sbx-bench-")

    def one(i: int, p: Program) -> bool:
        # Writing the file is part of the work, as it is for the pool.
        d = os.path.join(tmp, str(i))
        os.mkdir(d)
        path = os.path.join(d, "prog.py")
        with open(path, "w") as f:
            f.write(p.code)
        try:
            cp = subprocess.run([python, path], cwd=d, capture_output=True, timeout=10,
                                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return False
        finally:
            shutil.rmtree(d, ignore_errors=True)
        return cp.returncode == 0

    try:
        return _threaded(progs, workers, one)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_docker_run(progs: list[Program], workers: int, image: str) -> tuple[float, Counter[str]]:
    def one(i: int, p: Program) -> bool:
        cp = subprocess.run(["docker", "run", "--rm", "-i", "--network", "none", image,
                             "python3", "-"], input=p.code.encode(), capture_output=True,
                            timeout=60)
        return cp.returncode == 0

    return _threaded(progs, workers, one)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--programs", type=int, default=2000,
                    help="HumanEval programs (the 164, repeated) for (a) and (b)")
    ap.add_argument("--rounds", type=int, default=4,
                    help="(a) and (b) alternate this many times over the programs")
    ap.add_argument("--docker-run-sample", type=int, default=40,
                    help="programs for (c), which takes about a second each")
    ap.add_argument("--python", default=shutil.which("python3") and "/usr/bin/python3",
                    help="interpreter for (b); default /usr/bin/python3 (no pyenv shims)")
    args = ap.parse_args()
    console = Console()
    python = args.python if args.python and os.path.exists(args.python) else sys.executable
    image = build_image()
    progs = workload(args.programs)

    console.print(f"[bold]{len(progs)}[/] HumanEval programs, {args.workers} workers, "
                  f"{os.cpu_count()} CPUs")
    a_rate, a_counts, a_start, b_rate, b_counts = bench_a_and_b(
        progs, args.workers, image, python, args.rounds)
    console.print(f"(a) pool: {a_rate:.1f}/s {dict(a_counts)} (start-up {a_start:.2f}s)")
    console.print(f"(b) bare: {b_rate:.1f}/s {dict(b_counts)}")
    sample = progs[: args.docker_run_sample]
    c_rate, c_counts = bench_docker_run(sample, args.workers, image)
    console.print(f"(c) docker run: {c_rate:.2f}/s {dict(c_counts)}")

    table = Table(title=f"sandbox throughput, {args.workers} workers (one run)")
    table.add_column("method")
    table.add_column("programs", justify="right")
    table.add_column("programs/s", justify="right")
    table.add_column("(a) is x faster", justify="right")
    table.add_column("goal", justify="right")
    table.add_row("(a) selfalign warm pool", str(len(progs)), f"{a_rate:.1f}", "1.0x", "")
    table.add_row(f"(b) bare `{os.path.basename(python)} prog.py`", str(len(progs)),
                  f"{b_rate:.1f}", f"{a_rate / b_rate:.1f}x",
                  ">= 1.5x " + ("met" if a_rate >= 1.5 * b_rate else "MISSED"))
    table.add_row("(c) `docker run --rm` per program", str(len(sample)), f"{c_rate:.2f}",
                  f"{a_rate / c_rate:.1f}x",
                  ">= 10x " + ("met" if a_rate >= 10 * c_rate else "MISSED"))
    console.print(table)
    if a_counts.get("pass", 0) != len(progs):
        console.print("[red]warning[/]: not every canonical program passed in (a): "
                      f"{dict(a_counts)}")


if __name__ == "__main__":
    main()
