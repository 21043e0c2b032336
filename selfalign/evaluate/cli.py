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
    console,
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


def _slug(model: str) -> str:
    tail = model.rstrip("/").split("/")[-1] or model
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-") or "model"


@click.group(name="eval")
def eval_group() -> None:
    """Evaluate a model on HumanEval, executed in the sandbox; compare before and after."""


@eval_group.command(name="humaneval")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for results.jsonl (per problem) and summary.json "
    "[default: runs/eval/humaneval-<model>].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML file whose [model], [sandbox] and [eval.humaneval] sections set these "
    "options; command-line options win.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="How much the library logs.",
)
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


@eval_group.command(name="compare")
@click.argument(
    "summaries", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
@with_cli_errors
def compare_command(summaries: tuple[Path, ...]) -> None:
    """Show two or more HumanEval runs side by side (summary.json files or their directories).

    The first is the baseline: the table shows each later run's change, and the
    problems the second run fixed or broke.
    """
    from selfalign.evaluate.humaneval import compare

    comparison = compare(list(summaries))
    table = Table(title="HumanEval", title_justify="left")
    table.add_column("metric")
    for label in comparison.labels:
        table.add_column(label, justify="right")
    if len(comparison.labels) > 1:
        table.add_column("change", justify="right")
    for key, values in comparison.metrics.items():
        row = [key] + ["-" if v is None else f"{100 * v:.1f}%" for v in values]
        if len(values) > 1:
            first, last = values[0], values[-1]
            row.append(
                "-" if first is None or last is None else f"{100 * (last - first):+.1f} pts"
            )
        table.add_row(*row)
    console.print(table)
    if len(comparison.labels) > 1:
        console.print(
            f"fixed by the second: {len(comparison.fixed)}  "
            f"broken by the second: {len(comparison.broken)}"
        )
