"""`selfalign generate`: every data stage in order, sharing one loaded model.

concepts -> tasks -> respond (the model), execute (the sandbox), select, export.
Each stage resumes on its own, so a killed ``generate`` run is resumed by running
the same command again: complete stages are skipped, the interrupted one resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from selfalign.cli_support import (
    RichProgress,
    config_options,
    console,
    funnel_table,
    read_config_file,
    run_options,
    setup_logging,
    show_stats,
    take_config,
    with_cli_errors,
)
from selfalign.config import resolve, save_resolved
from selfalign.llm.config import ModelConfig
from selfalign.sections import section_class
from selfalign.store import RunDir

DATA_SECTIONS = ("concepts", "tasks", "respond", "sandbox", "execute", "select", "export")


def _section(name: str, file_values: dict[str, Any]) -> Any:
    cls = section_class(name)
    assert cls is not None
    return resolve(cls, name, file_values, {})


@click.command(name="generate")
@run_options
@config_options(ModelConfig)
@with_cli_errors
def generate_command(
    run_dir: Path, config_file: Path | None, force: bool, log_level: str, **options: Any
) -> None:
    """Run every data stage in order: concepts, tasks, respond, execute, select, export.

    Needs RUN/seeds (run `selfalign seeds` first). Stage options come from the
    config file's sections; the model options below override [model].
    """
    from selfalign.curate.execute import run_execute
    from selfalign.curate.export import run_export
    from selfalign.curate.select import run_select
    from selfalign.generation.common import LazyLLM
    from selfalign.generation.concepts import run_concepts
    from selfalign.generation.respond import run_respond
    from selfalign.generation.tasks import run_tasks

    setup_logging(log_level)
    file_values = read_config_file(config_file)
    model_cfg = take_config(ModelConfig, "model", options, file_values)
    cfg = {name: _section(name, file_values) for name in DATA_SECTIONS}
    run = RunDir(run_dir)
    save_resolved(run, {"model": model_cfg, **cfg})

    # One model for the three model stages, loaded only if one of them has work to do.
    shared = LazyLLM(model_cfg)
    for title, func, section in (
        ("S→C: concepts", run_concepts, "concepts"),
        ("C→I: tasks", run_tasks, "tasks"),
        ("I→R: responses", run_respond, "respond"),
    ):
        console.rule(title)
        stats = func(run, model_cfg, cfg[section], progress=RichProgress(), force=force, llm=shared)
        show_stats(stats)
    shared.llm = None  # free the model's memory before the sandbox runs

    console.rule("execute in the sandbox")
    show_stats(
        run_execute(run, cfg["execute"], cfg["sandbox"], progress=RichProgress(), force=force)
    )
    console.rule("select")
    selected = run_select(run, cfg["select"], progress=RichProgress(), force=force)
    show_stats(selected.dataset)
    if selected.pairs is not None:
        show_stats(selected.pairs)
    console.rule("export")
    result = run_export(run, cfg["export"], force=force)
    console.print(funnel_table(run))
    console.print(f"data set written to [bold]{result.paths.root}[/bold]")
