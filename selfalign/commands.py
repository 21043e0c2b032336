"""The commands derived from the pipeline: one per stage, ``generate`` and ``status``.

Each stage command takes ``--run``, ``--config``, ``--force``, ``--log-level`` and
one option per field of every config section the stage reads; it resolves those
sections over the config file, saves them in ``RUN/config.toml``, runs the stage
with a rich progress bar and prints its stats. ``generate`` runs every stage of the
pipeline after the seeds, in order, sharing one loaded model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from selfalign.cli_support import (
    RichProgress,
    console,
    funnel_table,
    read_config_file,
    run_dir_option,
    run_options,
    section_options,
    setup_logging,
    show_stats,
    take_section,
    with_cli_errors,
)
from selfalign.stage import Section, Stage
from selfalign.store import RunDir

if TYPE_CHECKING:
    from selfalign.stage_runner import Executor


def _check_options(name: str, sections: Sequence[Section]) -> None:
    """Two sections of one command must not define the same option (a developer error)."""
    from selfalign.cli_support import option_dest

    seen: dict[str, str] = {}
    reserved = {"run_dir", "config_file", "force", "log_level", "executor", "ray_address"}
    for section in sections:
        for field_name in section.config.__dataclass_fields__:
            dest = option_dest(section.option_prefix, field_name)
            clash = seen.get(dest) or ("the command itself" if dest in reserved else None)
            if clash:
                raise TypeError(
                    f"command {name!r}: option {dest!r} of [{section.name}] clashes with "
                    f"{clash}; give one of the sections an option_prefix"
                )
            seen[dest] = f"[{section.name}]"


def executor_options(func: Callable[..., Any]) -> Any:
    """``--executor`` and ``--ray-address``: where the stage's batches run."""
    from selfalign.executors import EXECUTORS

    func = click.option(
        "--ray-address",
        default=None,
        help="--executor ray: the cluster to join (default: $RAY_ADDRESS, else the cluster "
        "`ray start` last started on this machine, else a local one; docs/scale.md).",
    )(func)
    return click.option(
        "--executor",
        type=click.Choice(tuple(EXECUTORS)),
        default="local",
        show_default=True,
        help="Where batches run: in this process (local) or on a Ray cluster (ray; "
        "pip install 'selfalign[ray]'). Whole-data-set steps run here either way.",
    )(func)


def _executor(name: str, ray_address: str | None) -> Executor:
    from selfalign.executors import ExecutorOptions, make_executor

    return make_executor(ExecutorOptions(name=name, ray_address=ray_address))


def _with_sections(sections: Sequence[Section]) -> Callable[[Callable[..., Any]], Any]:
    def decorate(func: Callable[..., Any]) -> Any:
        for section in reversed(sections):
            func = section_options(section)(func)
        return func

    return decorate


def run_stages(
    stages: Sequence[Stage],
    run: RunDir,
    configs: dict[str, Any],
    *,
    force: bool,
    executor: str,
    ray_address: str | None,
    pipeline: Sequence[Stage],
    titles: bool = False,
) -> None:
    """Run ``stages`` in order with one set of shared resources and one executor, showing
    each stage's stats and report; what the next stage does not use is freed in between."""
    from selfalign.config import save_resolved
    from selfalign.pipeline import context
    from selfalign.stage import Resources
    from selfalign.stage_runner import run_stage

    save_resolved(run, configs)
    runner = _executor(executor, ray_address)
    with Resources() as resources, contextlib.closing(runner):
        ctx = context(run, configs, force=force, resources=resources, pipeline=pipeline)
        for index, stage in enumerate(stages):
            if titles:
                console.rule(f"{stage.command}: {stage.summary}")
            stats = run_stage(stage, ctx, progress=RichProgress(), executor=runner)
            show_stats(stats)
            for renderable in stage.report(stats) if stage.report else []:
                console.print(renderable)
            # Free what the next stage does not use (the model before the sandbox runs).
            following = stages[index + 1] if index + 1 < len(stages) else None
            keep = [configs[s.name] for s in following.uses] if following else []
            resources.release_except(keep)


def stage_command(stage: Stage, pipeline: Sequence[Stage]) -> click.Command:
    """The ``selfalign <command>`` of one stage."""
    _check_options(stage.command, stage.sections)
    reads = ", ".join(f"RUN/{name}" for name in stage.inputs) or "its source"

    def callback(
        run_dir: Path,
        config_file: Path | None,
        force: bool,
        log_level: str,
        executor: str,
        ray_address: str | None,
        **options: Any,
    ) -> None:
        setup_logging(log_level)
        file_values = read_config_file(config_file, pipeline)
        configs: dict[str, Any] = {}
        for section in stage.sections:
            configs[section.name] = take_section(section, options, file_values, pipeline, configs)
        run_stages(
            [stage],
            RunDir(run_dir),
            configs,
            force=force,
            executor=executor,
            ray_address=ray_address,
            pipeline=pipeline,
        )

    summary = stage.summary[:1].upper() + stage.summary[1:]
    callback.__doc__ = f"{summary}.\n\nReads {reads}; writes RUN/{stage.name}."
    command = with_cli_errors(callback)
    command = _with_sections(stage.sections)(command)
    command = executor_options(command)
    command = run_options(command)
    return click.command(name=stage.command, help=callback.__doc__)(command)


def generate_command(pipeline: Sequence[Stage]) -> click.Command:
    """``selfalign generate``: every stage after the seeds, in pipeline order."""
    from selfalign.generation.common import MODEL

    stages = [s for s in pipeline if s.in_generate]
    names = ", ".join(s.command for s in stages)
    uses_model = any(MODEL in s.sections for s in stages)

    def callback(
        run_dir: Path,
        config_file: Path | None,
        force: bool,
        log_level: str,
        executor: str,
        ray_address: str | None,
        **options: Any,
    ) -> None:
        from selfalign.pipeline import funnel, resolve_section

        setup_logging(log_level)
        file_values = read_config_file(config_file, pipeline)
        configs: dict[str, Any] = {}
        if uses_model:
            configs[MODEL.name] = take_section(MODEL, options, file_values, pipeline)
        for stage in stages:
            for section in stage.sections:
                if section.name not in configs:
                    configs[section.name] = resolve_section(
                        section, file_values, pipeline=pipeline, resolved=configs
                    )
        run = RunDir(run_dir)
        run_stages(
            stages,
            run,
            configs,
            force=force,
            executor=executor,
            ray_address=ray_address,
            pipeline=pipeline,
            titles=True,
        )
        console.print(funnel_table(funnel(run, pipeline), f"run {run.path}"))

    first = [s for s in pipeline if not s.in_generate]
    needs = "".join(f"Needs RUN/{s.name} (run `selfalign {s.command}` first). " for s in first)
    callback.__doc__ = (
        f"Run every data stage in order: {names}.\n\n{needs}Stage options come from the "
        "config file's sections"
        + ("; the model options below override [model]" if uses_model else "")
        + ". A killed run resumes where it stopped when run again."
    )
    command = with_cli_errors(callback)
    if uses_model:
        command = section_options(MODEL)(command)
    command = executor_options(command)
    command = run_options(command)
    return click.command(name="generate", help=callback.__doc__)(command)


def status_command(pipeline: Sequence[Stage]) -> click.Command:
    """``selfalign status``: the funnel of a run."""

    @click.command(name="status")
    @run_dir_option("Run directory to summarise.")
    @with_cli_errors
    def status(run_dir: Path) -> None:
        """Show the funnel of a run: every stage's read / dropped / written, in its units."""
        from selfalign.pipeline import funnel

        rows = funnel(RunDir(run_dir), pipeline)
        if not rows:
            console.print(f"no stage has run in {run_dir} yet")
            return
        console.print(funnel_table(rows, f"run {run_dir}"))

    return status
