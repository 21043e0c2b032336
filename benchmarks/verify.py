"""The cost of the strength check: running attempts plainly vs with the check.

The same attempts, the same pool, alternating in rounds (a shared machine's load
drifts over minutes):

  (a) plain: each attempt's program (the assembly rule) runs once, as the execute
      stage runs it today;
  (b) verified: ``selfalign.verify.Verifier.verify`` on the same attempts, through a
      ``pool_runner``: the same programs and, for those that pass (each as its result
      comes back), static checks, the null implementation, changed expectations and
      mutants in harness programs, all in one stream of the same pool;
  (c) pipelined: (b) in batches, each batch's strength programs in the same pool call
      as the next batch's programs (``Verifier.start`` / ``StrengthCheck``).

Reported: wall time, CPU time of the sandbox containers (their cgroups) and of this
process, programs sent to the pool, and the verdicts of (b). Goal (issue 11): (b) at
most 1.5x (a) in wall time.

The attempts: the hand-made run of tests/curate/conftest.py (without its attempt that
loops until the time limit, unless --with-timeout), the verification corpus
of tests/verify/corpus (cheats and honest answers) and the 164 HumanEval canonical
solutions with their tests.

    .venv/bin/python benchmarks/verify.py [--workers N] [--rounds 4] [--no-humaneval]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from selfalign.curate.program import assemble, program_hash
from selfalign.sandbox import Program, SandboxConfig, build_image, open_pool
from selfalign.sandbox.humaneval import load_problems
from selfalign.verify import (
    Candidate,
    StrengthCheck,
    StrengthConfig,
    Verification,
    Verifier,
    pool_runner,
)

ROOT = Path(__file__).resolve().parent.parent


def hand_made(with_timeout: bool) -> list[Candidate]:
    spec = importlib.util.spec_from_file_location(
        "curate_conftest", ROOT / "tests" / "curate" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    from selfalign.store import RunDir

    with tempfile.TemporaryDirectory() as tmp:
        hand = module.write_hand_run(RunDir(Path(tmp) / "run"))
    return [
        Candidate(f"hand/{name}", a.solution, a.tests)
        for name, a in hand.attempts.items()
        if with_timeout or name != "slow_timeout"
    ]


def corpus() -> list[Candidate]:
    out = []
    for path in sorted((ROOT / "tests" / "verify" / "corpus").glob("*/*.toml")):
        case = tomllib.loads(path.read_text(encoding="utf-8"))
        out.append(Candidate(f"{path.parent.name}/{path.stem}", case["solution"], case["tests"]))
    return out


def humaneval() -> list[Candidate]:
    return [
        Candidate(p["task_id"], p["prompt"] + p["canonical_solution"],
                  p["test"] + f"\n\ncheck({p['entry_point']})\n")
        for p in load_problems()
    ]


def pipelined(verifier: Verifier, attempts: list[Candidate], batch: int) -> list[Verification]:
    """Batches as the execute stage runs them, with each batch's strength programs sent in
    the same pool call as the next batch's programs (no wave waits for a whole batch)."""
    batches = [attempts[i:i + batch] for i in range(0, len(attempts), batch)]
    active: list[StrengthCheck] = []
    verdicts: list[Verification] = []
    k = 0
    while k < len(batches) or active:
        originals: dict[str, Program] = {}
        current = batches[k] if k < len(batches) else []
        hashes = []
        for c in current:
            code = assemble(c.solution, c.tests).code
            h = program_hash(code)
            originals.setdefault(h, Program(h, code))
            hashes.append(h)
        strength = [prog for check in active for prog in check.programs()]
        results = verifier.run([*strength, *originals.values()])
        verifier.stats["programs"] += len(originals)
        for check in active:
            check.feed(results)
        for check in [c for c in active if c.done]:
            verdicts.extend(check.verdicts())
        active = [c for c in active if not c.done]
        if current:
            active.append(verifier.start(
                [(c, results[h]) for c, h in zip(current, hashes, strict=True)]))
        k += 1
    return verdicts


def container_cpu(pool_id: str) -> float:
    """CPU seconds used so far by the pool's containers (cgroup v1 or v2)."""
    cp = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter",
                         f"label=selfalign.sandbox.pool={pool_id}"],
                        capture_output=True, text=True, timeout=60)
    total = 0.0
    for cid in cp.stdout.split():
        for path in (f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage",
                     f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"):
            try:
                text = Path(path).read_text()
            except OSError:
                continue
            if path.endswith("cpu.stat"):
                total += int(text.split("usage_usec")[1].split()[0]) / 1e6
            else:
                total += int(text) / 1e9
            break
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--no-humaneval", action="store_true", help="leave HumanEval out")
    ap.add_argument("--with-timeout", action="store_true",
                    help="keep the hand-made attempt that loops until the 10 s limit: its "
                    "wait then dominates both runs")
    ap.add_argument("--mutants", type=int, default=None, help="StrengthConfig.mutants")
    ap.add_argument("--expectations", type=int, default=None,
                    help="StrengthConfig.expectation_checks")
    ap.add_argument("--batch-size", type=int, default=64,
                    help="attempts per batch of the pipelined run (as execute's batches)")
    args = ap.parse_args()

    console = Console()
    attempts = hand_made(args.with_timeout) + corpus() + ([] if args.no_humaneval else humaneval())
    programs = [Program(program_hash(code), code)
                for code in dict.fromkeys(assemble(c.solution, c.tests).code for c in attempts)]
    overrides = {"mutants": args.mutants, "expectation_checks": args.expectations}
    cfg = StrengthConfig(**{k: v for k, v in overrides.items() if v is not None})
    image = build_image()
    modes = ("plain", "verified", "pipelined")
    wall: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    host: dict[str, list[float]] = {m: [] for m in modes}
    sent: dict[str, int] = {}
    strengths: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    variants = 0
    with open_pool(SandboxConfig(workers=args.workers, image=image)) as pool:
        list(pool.run(programs[:4]))  # warm up
        for _ in range(args.rounds):
            for mode in modes:
                c0, h0, t0 = container_cpu(pool.pool_id), time.process_time(), time.perf_counter()
                if mode == "plain":
                    # What execute does: assemble, run each distinct program once.
                    codes = dict.fromkeys(assemble(c.solution, c.tests).code for c in attempts)
                    run = [Program(program_hash(code), code) for code in codes]
                    sent[mode] = sum(1 for _ in pool.run(run))
                else:
                    verifier = Verifier(pool_runner(pool), cfg, pool.config)
                    results = (verifier.verify(attempts) if mode == "verified"
                               else pipelined(verifier, attempts, args.batch_size))
                    sent[mode] = verifier.stats["programs"] + verifier.stats["strength_programs"]
                    strengths = Counter(str(v.strength) for v in results)
                    reasons = Counter(str(r).split(" (")[0] for v in results for r in v.reasons)
                    variants = verifier.stats["variants"]
                wall[mode].append(time.perf_counter() - t0)
                host[mode].append(time.process_time() - h0)
                cpu[mode].append(container_cpu(pool.pool_id) - c0)

    table = Table(title=f"{len(attempts)} attempts ({len(programs)} distinct programs), "
                        f"{args.workers} workers, median of {args.rounds} rounds, "
                        f"{cfg.mutants} mutants, {cfg.expectation_checks} expectation checks")
    table.add_column("run")
    table.add_column("wall s", justify="right")
    table.add_column("sandbox CPU s", justify="right")
    table.add_column("host CPU s", justify="right")
    table.add_column("programs", justify="right")
    table.add_column("vs plain (wall)", justify="right")
    base = statistics.median(wall["plain"])
    for mode in modes:
        w = statistics.median(wall[mode])
        table.add_row(mode, f"{w:.2f}", f"{statistics.median(cpu[mode]):.2f}",
                      f"{statistics.median(host[mode]):.2f}", str(sent[mode]),
                      "1.0x" if mode == "plain" else f"[bold]{w / base:.2f}x[/]")
    console.print(table)
    console.print("goal (issue 11): verified at most 1.5x plain in wall time; 'pipelined' sends "
                  f"each batch's strength programs ({args.batch_size} attempts a batch) with "
                  "the next batch's programs, as an execute stage can")
    console.print(f"variants run inside harness programs: {variants}")
    console.print("strength: " + ", ".join(f"{k} {n}" for k, n in strengths.most_common()))
    console.print("reasons: " + ", ".join(f"{k} {n}" for k, n in reasons.most_common()))


if __name__ == "__main__":
    sys.exit(main())
