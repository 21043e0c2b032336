"""``selfalign seeds``: the command line of the seeds stage."""

from __future__ import annotations

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
from selfalign.config import ConfigError, save_resolved
from selfalign.seeds.config import SeedsConfig
from selfalign.store import RunDir, StageStats


def funnel_rows_table(stats: StageStats) -> Table:
    """files → functions → after each filter → seeds, with how many each step removed."""
    from selfalign.seeds.stage import funnel

    table = Table(title="seeds funnel", title_justify="left")
    table.add_column("step")
    table.add_column("count", justify="right")
    table.add_column("removed", justify="right")
    previous: int | None = None
    for label, count in funnel(stats):
        removed = "" if previous is None or label == "functions" else str(previous - count)
        table.add_row(label, str(count), removed)
        previous = count
    return table


@click.command(name="seeds")
@run_options
@config_options(SeedsConfig)
@with_cli_errors
def seeds_command(
    run_dir: Path, config_file: Path | None, force: bool, log_level: str, **options: Any
) -> None:
    """Harvest seed functions (with docstrings, type-checked, deduplicated) into RUN/seeds/."""
    # Imported here: the stage pulls numpy and tree-sitter, and `selfalign --help` should not.
    from selfalign.seeds.stage import funnel, run_seeds

    setup_logging(log_level)
    cfg = take_config(SeedsConfig, "seeds", options, read_config_file(config_file))
    run = RunDir(run_dir)
    save_resolved(run, {"seeds": cfg})
    try:
        stats = run_seeds(run, cfg, progress=RichProgress(), force=force)
    except ValueError as exc:
        # Bad benchmark files and similar input errors are configuration problems.
        raise ConfigError(str(exc)) from exc
    show_stats(stats)
    if funnel(stats):
        console.print(funnel_rows_table(stats))
