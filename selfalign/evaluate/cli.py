"""`selfalign eval humaneval` and `selfalign eval compare`: the evaluation command line.

`eval humaneval` reads the same `[model]` and `[sandbox]` sections, with the same
options, as the data stages (the sandbox's options carry a `--sandbox-` prefix here,
beside the model's), and `[eval.humaneval]` for the benchmark itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from selfalign.cli_support import (
    RichProgress,
    config_file_option,
    console,
    log_level_option,
    out_dir_option,
    read_config_file,
    section_options,
    setup_logging,
    take_section,
    with_cli_errors,
)
from selfalign.evaluate.humaneval import HumanEvalConfig
from selfalign.generation.common import MODEL
from selfalign.sandbox.config import SandboxConfig
from selfalign.stage import Section

SANDBOX = Section("sandbox", SandboxConfig, option_prefix="sandbox-")
HUMANEVAL = Section("eval.humaneval", HumanEvalConfig)


def _task_config() -> type:
    # The held-out task evaluation lives with the RL training that makes its tasks.
    from selfalign.train.task_eval import TaskEvalConfig

    return TaskEvalConfig


def _slug(model: str) -> str:
    tail = model.rstrip("/").split("/")[-1] or model
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-") or "model"


@click.group(name="eval")
def eval_group() -> None:
    """Evaluate a model: HumanEval executed in the sandbox, pairwise arena against a
    baseline judged by a model; compare before and after."""


def _mount() -> None:
    from selfalign.evaluate.arena_cli import arena_command

    eval_group.add_command(arena_command)


@eval_group.command(name="humaneval")
@out_dir_option(
    "Directory for results.jsonl (per problem) and summary.json "
    "[default: runs/eval/humaneval-<model>]."
)
@config_file_option(
    "TOML file whose [model], [sandbox] and [eval.humaneval] sections set these "
    "options; command-line options win."
)
@log_level_option()
@section_options(MODEL)
@section_options(SANDBOX)
@section_options(HUMANEVAL)
@with_cli_errors
def humaneval_command(
    out: Path | None, config_file: Path | None, log_level: str, **options: Any
) -> None:
    """Generate completions for HumanEval, run them in the sandbox, report pass@k and
    executability (the completion runs without error up to the tests)."""
    from selfalign.evaluate.humaneval import evaluate
    from selfalign.llm.base import load_llm

    setup_logging(log_level)
    file_values = read_config_file(config_file)
    model_cfg = take_section(MODEL, options, file_values)
    sandbox_cfg = take_section(SANDBOX, options, file_values)
    cfg = take_section(HUMANEVAL, options, file_values)
    out = out or Path("runs/eval") / f"humaneval-{_slug(model_cfg.model)}"
    llm = load_llm(model_cfg)
    report = evaluate(
        llm,
        cfg,
        sandbox_cfg,
        mode=model_cfg.mode,
        model_name=model_cfg.model,
        backend=model_cfg.backend,
        out=out,
        progress=RichProgress(),
    )
    summary = report.summary
    table = Table(
        title=f"HumanEval: {model_cfg.model} ({model_cfg.mode}, {summary['problems']} problems)"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary["pass_at_k"].items():
        table.add_row(key, f"{100 * value:.1f}%", style="green")
    table.add_row("executability", f"{100 * summary['executability']:.1f}%")
    for status, count in sorted(summary["statuses"].items()):
        table.add_row(f"programs: {status}", str(count))
    table.add_row("completions hitting max_new_tokens", str(summary["hit_max_new_tokens"]))
    table.add_row("generation seconds", f"{summary['generation_seconds']:.1f}")
    table.add_row("execution seconds", f"{summary['execution_seconds']:.1f}")
    console.print(table)
    console.print(f"results in {out}")


TASKS = Section("eval.tasks", _task_config())


@eval_group.command(name="tasks")
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="Held-out tasks: OUT/heldout.jsonl of `selfalign train grpo`, or a data set folder "
    "(RUN/dataset: its sft rows' instructions and tests).",
)
@out_dir_option("Directory for results.jsonl and summary.json [default: runs/eval/tasks-<model>].")
@config_file_option(
    "TOML file whose [model], [sandbox] and [eval.tasks] sections set these options; "
    "command-line options win."
)
@log_level_option()
@section_options(MODEL)
@section_options(SANDBOX)
@section_options(TASKS)
@with_cli_errors
def tasks_command(
    data: Path, out: Path | None, config_file: Path | None, log_level: str, **options: Any
) -> None:
    """Answer held-out tasks, run each answer with the task's own tests in the sandbox, and
    report pass@k and executability (compare before and after RL with `eval compare`)."""
    from selfalign.llm.base import load_llm
    from selfalign.train.task_eval import evaluate_tasks, load_tasks

    setup_logging(log_level)
    file_values = read_config_file(config_file)
    model_cfg = take_section(MODEL, options, file_values)
    sandbox_cfg = take_section(SANDBOX, options, file_values)
    cfg = take_section(TASKS, options, file_values)
    tasks = load_tasks(data, cfg.limit)
    out = out or Path("runs/eval") / f"tasks-{_slug(model_cfg.model)}"
    report = evaluate_tasks(
        load_llm(model_cfg), tasks, cfg, sandbox_cfg, model_name=model_cfg.model, out=out
    )
    summary = report.summary
    table = Table(title=f"held-out tasks: {model_cfg.model} ({summary['problems']} tasks)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary["pass_at_k"].items():
        table.add_row(key, f"{100 * value:.1f}%", style="green")
    table.add_row("executability", f"{100 * summary['executability']:.1f}%")
    for status, count in sorted(summary["statuses"].items()):
        table.add_row(f"programs: {status}", str(count))
    console.print(table)
    console.print(f"results in {out}")


@eval_group.command(name="compare")
@click.argument("summaries", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@with_cli_errors
def compare_command(summaries: tuple[Path, ...]) -> None:
    """Show evaluations side by side: HumanEval runs and arena runs (summary.json files or
    their directories), each kind in its own table.

    The first run of a kind is the baseline: the table shows each later run's change,
    and the problems (questions) the second run fixed or broke.
    """
    from selfalign.evaluate.arena import is_arena_run
    from selfalign.evaluate.arena_cli import show_arena_comparison

    arena = [p for p in summaries if is_arena_run(p)]
    by_benchmark: dict[str, list[Path]] = {}
    for path in summaries:
        if path not in arena:
            by_benchmark.setdefault(_benchmark(path), []).append(path)
    for benchmark, paths in by_benchmark.items():
        show_humaneval_comparison(paths, TITLES.get(benchmark, benchmark))
    humaneval = by_benchmark.get("humaneval", [])
    if arena:
        show_arena_comparison(arena)
    if humaneval and arena:
        console.print(overview_table(humaneval, arena))


TITLES = {"humaneval": "HumanEval", "heldout-tasks": "held-out tasks"}


def _benchmark(path: Path) -> str:
    import json

    file = path / "summary.json" if path.is_dir() else path
    try:
        return str(json.loads(file.read_text(encoding="utf-8")).get("benchmark") or "humaneval")
    except (OSError, ValueError):
        return "humaneval"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def overview_table(humaneval: list[Path], arena: list[Path]) -> Table:
    """One table per model: HumanEval pass@1 and executability, and the arena score of the
    arena runs that model played (against the baseline named in the cell)."""
    from selfalign.evaluate.arena import read_run
    from selfalign.evaluate.humaneval import compare

    comparison = compare(humaneval)
    runs = [read_run(p) for p in arena]
    labels = list(comparison.labels)
    for run in runs:
        for name in (run.model, run.baseline):
            if name not in labels:
                labels.append(name)
    table = Table(title="base and tuned: HumanEval and the arena", title_justify="left")
    table.add_column("metric")
    for label in labels:
        table.add_column(label, justify="right")
    for key, values in comparison.metrics.items():
        cells = dict(zip(comparison.labels, values, strict=True))
        table.add_row(f"HumanEval {key}", *[_percent(cells.get(lb)) for lb in labels])
    for run in runs:
        stats = run.overall
        cells = {label: "-" for label in labels}
        if stats.score is not None:
            ci = stats.score_ci
            band = f" [{ci.low:.2f}, {ci.high:.2f}]" if ci is not None else ""
            cells[run.model] = f"{stats.score:.2f}{band} (n={stats.n})"
        cells[run.baseline] = "baseline"
        table.add_row(f"arena score vs {run.baseline}, judge {run.judge}", *cells.values())
    return table


def show_humaneval_comparison(summaries: list[Path], title: str = "HumanEval") -> None:
    """HumanEval (or held-out task) runs side by side: pass@k and executability, and what
    changed between the first two."""
    from selfalign.evaluate.humaneval import compare

    comparison = compare(summaries)
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for label in comparison.labels:
        table.add_column(label, justify="right")
    if len(comparison.labels) > 1:
        table.add_column("change", justify="right")
    for key, values in comparison.metrics.items():
        row = [key] + ["-" if v is None else f"{100 * v:.1f}%" for v in values]
        if len(values) > 1:
            first, last = values[0], values[-1]
            row.append("-" if first is None or last is None else f"{100 * (last - first):+.1f} pts")
        table.add_row(*row)
    console.print(table)
    if len(comparison.labels) > 1:
        console.print(
            f"fixed by the second: {len(comparison.fixed)}  "
            f"broken by the second: {len(comparison.broken)}"
        )


_mount()
