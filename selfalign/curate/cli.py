"""The ``execute``, ``select`` and ``export`` commands (mounted by ``selfalign.cli``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from selfalign.cli_support import (
    RichProgress,
    config_options,
    console,
    read_config_file,
    run_options,
    setup_logging,
    show_stats,
    take_config,
    with_cli_errors,
)
from selfalign.config import save_resolved
from selfalign.curate.config import ExecuteConfig, ExportConfig, SelectConfig
from selfalign.sandbox.config import SandboxConfig
from selfalign.store import RunDir


def rate_table(title: str, groups: dict[str, dict[str, Any]]) -> Table:
    """Attempts, passes, pass rate and executability rate per group."""
    table = Table(title=title, title_justify="left")
    for column in ("group", "attempts", "passed", "pass rate", "executable"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for name, g in groups.items():
        table.add_row(
            name,
            str(g["attempts"]),
            str(g["passed"]),
            f"{100 * g['pass_rate']:.1f}%",
            f"{100 * g['executable_rate']:.1f}%",
        )
    return table


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    sys.exit(1)


@click.command(name="execute")
@run_options
@config_options(ExecuteConfig)
@config_options(SandboxConfig)
@with_cli_errors
def execute_command(
    run_dir: Path, config_file: Path | None, force: bool, log_level: str, **options: Any
) -> None:
    """Run every attempt's program (solution + tests) in the sandbox; write RUN/verdicts."""
    from selfalign.curate.execute import SandboxBroken, run_execute
    from selfalign.sandbox import SandboxUnavailable

    setup_logging(log_level)
    file_values = read_config_file(config_file)
    cfg = take_config(ExecuteConfig, "execute", options, file_values)
    sandbox_cfg = take_config(SandboxConfig, "sandbox", options, file_values)
    run = RunDir(run_dir)
    save_resolved(run, {"execute": cfg, "sandbox": sandbox_cfg})
    try:
        stats = run_execute(run, cfg, sandbox_cfg, progress=RichProgress(), force=force)
    except (SandboxUnavailable, SandboxBroken, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    show_stats(stats)
    m = stats.metrics
    if m.get("attempts"):
        console.print(
            f"pass rate [bold]{100 * m['pass_rate']:.1f}%[/bold], executable "
            f"{100 * m['executable_rate']:.1f}%, tasks with a pass "
            f"{m['tasks_with_pass']}/{m['tasks']}"
        )
        for title, key in (
            ("by category", "by_category"),
            ("by difficulty", "by_difficulty"),
            ("by parse outcome", "by_parse_outcome"),
        ):
            console.print(rate_table(title, m.get(key, {})))


@click.command(name="select")
@run_options
@config_options(SelectConfig)
@with_cli_errors
def select_command(
    run_dir: Path, config_file: Path | None, force: bool, log_level: str, **options: Any
) -> None:
    """Keep one passing answer per task, drop vacuous tests, decontaminate, dedup; make pairs."""
    from selfalign.curate.candidates import StageNotReady
    from selfalign.curate.select import run_select

    setup_logging(log_level)
    cfg = take_config(SelectConfig, "select", options, read_config_file(config_file))
    run = RunDir(run_dir)
    save_resolved(run, {"select": cfg})
    try:
        result = run_select(run, cfg, progress=RichProgress(), force=force)
    except (StageNotReady, ValueError) as exc:
        _fail(str(exc))
        return
    show_stats(result.dataset)
    if result.pairs is not None:
        show_stats(result.pairs)


@click.command(name="export")
@run_options
@config_options(ExportConfig)
@with_cli_errors
def export_command(
    run_dir: Path, config_file: Path | None, force: bool, log_level: str, **options: Any
) -> None:
    """Write the SFT set and the pairs (JSONL, Parquet, save_to_disk), the card and its plots."""
    from selfalign.curate.candidates import StageNotReady
    from selfalign.curate.export import run_export

    setup_logging(log_level)
    cfg = take_config(ExportConfig, "export", options, read_config_file(config_file))
    run = RunDir(run_dir)
    save_resolved(run, {"export": cfg})
    try:
        result = run_export(run, cfg, force=force)
    except StageNotReady as exc:
        _fail(str(exc))
        return
    s = result.summary
    console.print(
        f"[green]exported[/green] {s['sft_rows']} examples and {s['pairs_rows']} pairs to "
        f"{result.paths.root} (card: {result.paths.card})"
    )
    if cfg.push_to_hub:
        console.print(f"pushed to https://huggingface.co/datasets/{cfg.push_to_hub}")
