"""`selfalign eval humaneval` and `selfalign eval compare`: the evaluation command line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from selfalign.cli_support import (
    RichProgress,
    config_options,
    console,
    read_config_file,
    setup_logging,
    take_config,
    with_cli_errors,
)
from selfalign.config import ConfigError
from selfalign.evaluate.humaneval import HumanEvalConfig

_BACKENDS = ("transformers", "vllm", "openai")


def _slug(model: str) -> str:
    tail = model.rstrip("/").split("/")[-1] or model
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-") or "model"


@click.group(name="eval")
def eval_group() -> None:
    """Evaluate a model on HumanEval, executed in the sandbox; compare before and after."""


@eval_group.command(name="humaneval")
@click.option(
    "--model",
    default="embedded",
    show_default=True,
    help="Model: 'embedded' (SmolLM2-135M-Instruct), a trained output directory or a hub id; "
    "for --backend openai, the name the server expects.",
)
@click.option(
    "--backend",
    type=click.Choice(_BACKENDS),
    default="transformers",
    show_default=True,
    help="Inference backend.",
)
@click.option(
    "--base-url", default=None, help="--backend openai: the server's URL (…/v1)."
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="transformers backend: where the model runs.",
)
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
    help="TOML file whose [eval.humaneval] section sets these options; command-line options win.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="How much the library logs.",
)
@config_options(HumanEvalConfig)
@with_cli_errors
def humaneval_command(
    model: str,
    backend: str,
    base_url: str | None,
    device: str,
    out: Path | None,
    config_file: Path | None,
    log_level: str,
    **options: Any,
) -> None:
    """Generate completions for HumanEval, run them in the sandbox, report pass@k."""
    from selfalign.evaluate.humaneval import evaluate
    from selfalign.llm.base import load_llm
    from selfalign.llm.config import ModelConfig
    from selfalign.sandbox import SandboxUnavailable

    setup_logging(log_level)
    file_values = read_config_file(config_file)
    section = file_values.get("eval", {})
    section = section.get("humaneval", {}) if isinstance(section, dict) else {}
    try:
        cfg = take_config(HumanEvalConfig, "eval.humaneval", options, {"eval.humaneval": section})
        model_kwargs: dict[str, Any] = {"backend": backend, "model": model, "mode": cfg.mode}
        if backend == "transformers":
            model_kwargs["device"] = device
        if base_url:
            model_kwargs["base_url"] = base_url
        model_cfg = ModelConfig(**model_kwargs)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    out = out or Path("runs/eval") / f"humaneval-{_slug(model)}"
    llm = load_llm(model_cfg)
    try:
        report = evaluate(
            llm, cfg, model_name=model, backend=backend, out=out, progress=RichProgress()
        )
    except SandboxUnavailable as exc:
        raise ConfigError(str(exc)) from exc
    summary = report.summary
    table = Table(title=f"HumanEval: {model} ({cfg.mode}, {summary['problems']} problems)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary["pass_at_k"].items():
        table.add_row(key, f"{100 * value:.1f}%", style="green")
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
