"""The `selfalign concepts`, `selfalign tasks` and `selfalign respond` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from selfalign.cli_support import (
    RichProgress,
    config_options,
    read_config_file,
    run_options,
    setup_logging,
    show_stats,
    take_config,
    with_cli_errors,
)
from selfalign.config import save_resolved
from selfalign.generation.config import ConceptsConfig, RespondConfig, TasksConfig
from selfalign.llm.config import ModelConfig
from selfalign.store import RunDir


def _configs(
    stage_cls: type, section: str, config_file: Path | None, options: dict[str, Any]
) -> tuple[ModelConfig, Any]:
    file_values = read_config_file(config_file)
    model_cfg = take_config(ModelConfig, "model", options, file_values)
    stage_cfg = take_config(stage_cls, section, options, file_values)
    return model_cfg, stage_cfg


@click.command(name="concepts")
@run_options
@config_options(ModelConfig)
@config_options(ConceptsConfig)
@with_cli_errors
def concepts_command(
    run_dir: Path, config_file: Path | None, force: bool, log_level: str, **options: Any
) -> None:
    """S→C: list the programming concepts of each seed (reads RUN/seeds, writes RUN/concepts)."""
    from selfalign.generation.concepts import run_concepts

    setup_logging(log_level)
    model_cfg, cfg = _configs(ConceptsConfig, "concepts", config_file, options)
    run = RunDir(run_dir)
    save_resolved(run, {"model": model_cfg, "concepts": cfg})
    show_stats(run_concepts(run, model_cfg, cfg, progress=RichProgress(), force=force))


@click.command(name="tasks")
@run_options
@config_options(ModelConfig)
@config_options(TasksConfig)
@with_cli_errors
def tasks_command(
    run_dir: Path, config_file: Path | None, force: bool, log_level: str, **options: Any
) -> None:
    """C→I: write a coding task from each concept list (reads RUN/concepts, writes RUN/tasks)."""
    from selfalign.generation.tasks import run_tasks

    setup_logging(log_level)
    model_cfg, cfg = _configs(TasksConfig, "tasks", config_file, options)
    run = RunDir(run_dir)
    save_resolved(run, {"model": model_cfg, "tasks": cfg})
    show_stats(run_tasks(run, model_cfg, cfg, progress=RichProgress(), force=force))


@click.command(name="respond")
@run_options
@config_options(ModelConfig)
@config_options(RespondConfig)
@with_cli_errors
def respond_command(
    run_dir: Path, config_file: Path | None, force: bool, log_level: str, **options: Any
) -> None:
    """I→R: sample answers with tests for each task (reads RUN/tasks, writes RUN/attempts)."""
    from selfalign.generation.respond import run_respond

    setup_logging(log_level)
    model_cfg, cfg = _configs(RespondConfig, "respond", config_file, options)
    run = RunDir(run_dir)
    save_resolved(run, {"model": model_cfg, "respond": cfg})
    show_stats(run_respond(run, model_cfg, cfg, progress=RichProgress(), force=force))
