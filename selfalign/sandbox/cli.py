"""`selfalign sandbox ...`: build the image, run programs, clean up.

Mounted by the main CLI with ``cli.add_command(sandbox_group)``; also runnable on
its own as ``python -m selfalign.sandbox.cli``.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from .backends import BACKEND_NAMES
from .config import SandboxConfig
from .errors import SandboxUnavailable
from .verdict import STATUSES, ExecResult, Program


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=_console(), show_path=False)],
        force=True,
    )


@click.group("sandbox")
def sandbox_group() -> None:
    """Run untrusted Python programs in a warm pool of sandboxes."""


@sandbox_group.command("build")
@click.option(
    "--backend",
    type=click.Choice(BACKEND_NAMES),
    default="docker",
    show_default=True,
    help="docker: build the image; bwrap: build the root file system.",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "dockerfile", "offline"]),
    default="auto",
    show_default=True,
    help="dockerfile needs a registry; offline uses debootstrap + docker import.",
)
@click.option("--force", is_flag=True, help="Rebuild even when the image is up to date.")
@click.option("--mirror", default=None, help="Debian mirror for the offline build.")
@click.option("-v", "--verbose", is_flag=True)
def build_cmd(backend: str, method: str, force: bool, mirror: str | None, verbose: bool) -> None:
    """Build the sandbox image (tagged with a hash of sandbox/)."""
    from .image import build_image, ensure_rootfs

    _setup_logging(bool(verbose))
    logging.getLogger("selfalign").setLevel(logging.INFO)
    console = _console()
    t0 = time.monotonic()
    try:
        if backend == "bwrap":
            path = ensure_rootfs(mirror=mirror, force=force)
            console.print(f"bwrap root file system: [bold]{path}[/] ({time.monotonic() - t0:.1f}s)")
            return
        tag = build_image(method, force=force, mirror=mirror)  # type: ignore[arg-type]
    except SandboxUnavailable as e:
        raise click.ClickException(str(e)) from e
    console.print(f"sandbox image: [bold]{tag}[/] ({time.monotonic() - t0:.1f}s)")


@sandbox_group.command("clean")
@click.option(
    "--all",
    "all_",
    is_flag=True,
    help="Remove every sandbox container, also those of pools still running.",
)
def clean_cmd(all_: bool) -> None:
    """Remove sandbox containers left behind (those whose owning process is gone)."""
    from .clean import clean

    removed = clean(all_containers=all_)
    _console().print(f"removed {len(removed)} sandbox container(s)")


def _read_programs(path: Path, errors: collections.deque[ExecResult]) -> Iterator[Program]:
    """Programs from a JSONL file; a bad line becomes a sandbox_error verdict in ``errors``."""
    with path.open("r", encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                errors.append(ExecResult.error(f"line-{n}", f"line {n} is empty", attempts=0))
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                errors.append(
                    ExecResult.error(f"line-{n}", f"line {n} is not JSON: {e}", attempts=0)
                )
                continue
            if not isinstance(obj, dict):
                errors.append(
                    ExecResult.error(f"line-{n}", f"line {n} is not a JSON object", attempts=0)
                )
                continue
            pid = obj.get("id")
            pid = str(pid) if pid is not None and pid != "" else f"line-{n}"
            code = obj.get("code")
            if not isinstance(code, str):
                errors.append(
                    ExecResult.error(
                        pid,
                        f"line {n} has no string field 'code' (expected "
                        '{"id": "...", "code": "..."})',
                        attempts=0,
                    )
                )
                continue
            yield Program(pid, code)


def _read_candidates(path: Path) -> Iterator[Any]:
    """``--check-tests`` input: a Candidate per good line, an error ExecResult per bad one."""
    from selfalign.verify import Candidate

    with path.open("r", encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            try:
                obj = json.loads(line) if line.strip() else None
            except ValueError as e:
                yield ExecResult.error(f"line-{n}", f"line {n} is not JSON: {e}", attempts=0)
                continue
            if not isinstance(obj, dict):
                yield ExecResult.error(
                    f"line-{n}", f"line {n} is empty or not a JSON object", attempts=0
                )
                continue
            pid = obj.get("id")
            pid = str(pid) if pid is not None and pid != "" else f"line-{n}"
            solution, tests = obj.get("solution"), obj.get("tests")
            if not isinstance(solution, str) or not isinstance(tests, str):
                yield ExecResult.error(
                    pid,
                    f"line {n} needs string fields 'solution' and 'tests' with --check-tests "
                    '(expected {"id": "...", "solution": "...", "tests": "..."}; plain '
                    '{"id", "code"} lines run without --check-tests)',
                    attempts=0,
                )
                continue
            yield Candidate(pid, solution, tests)


def _verdict_line(v: Any) -> dict[str, Any]:
    """One output line of --check-tests: the sandbox result's fields, then the strength."""
    data = v.to_dict()
    result = data.pop("result")
    return {**result, **data}


def _count_lines(path: Path) -> int | None:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return None


@sandbox_group.command("run")
@click.option(
    "--input",
    "input_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help='JSONL, one {"id": ..., "code": ...} per line ({"id", "solution", "tests"} with '
    "--check-tests).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSONL verdicts, one per input line (written atomically at the end).",
)
@click.option(
    "--backend", type=click.Choice(BACKEND_NAMES), default="docker", show_default=True
)
@click.option("--workers", type=int, default=None, help="Parallel sandboxes (default: CPU count).")
@click.option(
    "--timeout", "timeout_s", type=float, default=None, help="Seconds per program (default 10)."
)
@click.option("--memory-mb", type=int, default=None, help="MiB per program (default 1024).")
@click.option("--image", default=None, help="Docker image (default: the current build).")
@click.option("--runtime", default=None, help="Docker runtime, e.g. runsc for gVisor, or auto.")
@click.option(
    "--check-tests",
    is_flag=True,
    help='Input lines are {"id", "solution", "tests"}: run the assembled program, then check '
    "that its tests could have failed (null implementation, changed expectations, mutants, "
    "static checks; docs/verification.md). Verdicts gain strength, reasons, mutation score.",
)
@click.option(
    "--mutants", type=int, default=None, help="With --check-tests: mutants per answer (8)."
)
@click.option(
    "--min-mutation-score",
    type=float,
    default=None,
    help="With --check-tests: share of mutants the tests must kill (0.6).",
)
@click.option("-v", "--verbose", is_flag=True)
def run_cmd(
    input_: Path,
    output: Path,
    backend: str,
    workers: int | None,
    timeout_s: float | None,
    memory_mb: int | None,
    image: str | None,
    runtime: str | None,
    check_tests: bool,
    mutants: int | None,
    min_mutation_score: float | None,
    verbose: bool,
) -> None:
    """Run every program of --input and write one verdict per line to --output."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from . import open_pool

    _setup_logging(verbose)
    console = _console()
    try:
        config = SandboxConfig(
            backend=backend,  # type: ignore[arg-type]
            **{
                k: v
                for k, v in {
                    "workers": workers,
                    "timeout_s": timeout_s,
                    "memory_mb": memory_mb,
                    "image": image,
                    "runtime": runtime,
                }.items()
                if v is not None
            },
        )
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    if check_tests:
        from selfalign.verify import StrengthConfig

        try:
            strength = StrengthConfig(**{
                k: v
                for k, v in {"mutants": mutants, "min_mutation_score": min_mutation_score}.items()
                if v is not None
            })
        except ValueError as e:
            raise click.BadParameter(str(e)) from e
        _run_checked(input_, output, config, strength, console)
        return
    if mutants is not None or min_mutation_score is not None:
        raise click.BadParameter("--mutants and --min-mutation-score need --check-tests")

    total = _count_lines(input_)
    errors: collections.deque[ExecResult] = collections.deque()
    counts: collections.Counter[str] = collections.Counter()
    tmp = output.with_name(output.name + ".tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    written = 0
    progress = Progress(
        TextColumn("[bold]sandbox"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} prog/s"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
    )
    try:
        with tmp.open("w", encoding="utf-8") as out, progress, open_pool(config) as pool:
            task = progress.add_task("run", total=total, rate=0.0)

            def emit(r: ExecResult) -> None:
                nonlocal written
                out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
                counts[r.status] += 1
                written += 1
                progress.update(task, advance=1, rate=written / max(1e-9, time.monotonic() - t0))

            for r in pool.run(_read_programs(input_, errors)):
                while errors:
                    emit(errors.popleft())
                emit(r)
            while errors:
                emit(errors.popleft())
        os.replace(tmp, output)
    except SandboxUnavailable as e:
        tmp.unlink(missing_ok=True)
        raise click.ClickException(str(e)) from e
    except KeyboardInterrupt:
        tmp.unlink(missing_ok=True)
        console.print("[red]interrupted[/]: every sandbox was removed; nothing was written")
        sys.exit(130)

    _print_summary(console, counts, written, time.monotonic() - t0, output)


CHECK_CHUNK = 256
"""Answers verified together: their programs and strength checks share the pool's stream."""


def _run_checked(input_: Path, output: Path, config: SandboxConfig, strength: Any,
                 console: Any) -> None:
    """``run --check-tests``: verdicts with test strength, in input order."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from selfalign.verify import Verifier, pool_runner

    from . import open_pool

    total = _count_lines(input_)
    counts: collections.Counter[str] = collections.Counter()
    strengths: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    tmp = output.with_name(output.name + ".tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    written = 0
    progress = Progress(TextColumn("[bold]verify"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)
    try:
        with tmp.open("w", encoding="utf-8") as out, progress, open_pool(config) as pool:
            task = progress.add_task("verify", total=total)
            verifier = Verifier(pool_runner(pool), strength, config)
            items = _read_candidates(input_)
            while True:
                chunk = [x for _, x in zip(range(CHECK_CHUNK), items, strict=False)]
                if not chunk:
                    break
                good = [x for x in chunk if not isinstance(x, ExecResult)]
                verdicts = iter(verifier.verify(good))
                for x in chunk:
                    line = x.to_dict() if isinstance(x, ExecResult) else _verdict_line(
                        next(verdicts))
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
                    counts[line["status"]] += 1
                    strengths[str(line.get("strength"))] += 1
                    reasons.update(r.split(" (")[0] for r in line.get("reasons", []))
                    written += 1
                progress.update(task, advance=len(chunk))
        os.replace(tmp, output)
    except SandboxUnavailable as e:
        tmp.unlink(missing_ok=True)
        raise click.ClickException(str(e)) from e
    except KeyboardInterrupt:
        tmp.unlink(missing_ok=True)
        console.print("[red]interrupted[/]: every sandbox was removed; nothing was written")
        sys.exit(130)
    _print_summary(console, counts, written, time.monotonic() - t0, output)
    _print_strength(console, strengths, reasons, written)


def _print_strength(console: Any, strengths: collections.Counter[str],
                    reasons: collections.Counter[str], total: int) -> None:
    from rich.table import Table

    table = Table(title="test strength (None: the program did not pass)")
    table.add_column("strength")
    table.add_column("answers", justify="right")
    for name in ("strong", "weak", "None"):
        table.add_row(name, str(strengths.get(name, 0)))
    console.print(table)
    if reasons:
        why = Table(title="why not strong (an answer can have several reasons)")
        why.add_column("reason")
        why.add_column("answers", justify="right")
        for reason, n in reasons.most_common():
            why.add_row(reason, str(n))
        console.print(why)


def _print_summary(
    console: Any, counts: collections.Counter[str], total: int, seconds: float, output: Path
) -> None:
    from rich.table import Table

    table = Table(
        title=f"{total} programs in {seconds:.1f}s "
        f"({total / max(seconds, 1e-9):.1f} prog/s) -> {output}"
    )
    table.add_column("status")
    table.add_column("programs", justify="right")
    table.add_column("share", justify="right")
    for status in STATUSES:
        n = counts.get(status, 0)
        table.add_row(status, str(n), f"{100 * n / max(total, 1):.1f}%")
    console.print(table)


def main() -> None:
    sandbox_group()


if __name__ == "__main__":
    main()
