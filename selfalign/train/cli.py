"""`selfalign train sft|dpo|reward|grpo`: the command line of the training package.

Options come from `SFTOptions` / `DPOOptions` / `RewardOptions` / `GRPOOptions`; a
TOML file (`--config`) sets them in `[train]` (shared by all) and `[train.sft]` /
`[train.dpo]` / `[train.reward]` / `[train.grpo]`; what is typed on the command line
wins. `train grpo` also reads the file's `[sandbox]` section.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from selfalign.cli_support import (
    config_file_option,
    config_options,
    console,
    log_level_option,
    read_config_file,
    setup_logging,
    take_config,
    with_cli_errors,
)
from selfalign.config import ConfigError
from selfalign.train.config import DPOOptions, GRPOOptions, RewardOptions, SFTOptions

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")


def _common_options(func: F) -> F:
    func = log_level_option("info")(func)
    return config_file_option(
        "TOML file: [train] and [train.sft|dpo|reward|grpo] set these options "
        "([sandbox] too for grpo); command-line options win."
    )(func)


def section_values(file_values: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """`[train]`'s plain keys overlaid with `[train.<kind>]`, as one section for `take_config`."""
    train = file_values.get("train", {})
    if not isinstance(train, dict):
        raise ConfigError("[train] must be a table of key = value")
    merged = {k: v for k, v in train.items() if not isinstance(v, dict)}
    specific = train.get(kind, {})
    if not isinstance(specific, dict):
        raise ConfigError(f"[train.{kind}] must be a table of key = value")
    merged.update(specific)
    return {f"train.{kind}": merged}


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _options(cls: type[C], kind: str, config_file: Path | None, options: dict[str, Any]) -> C:
    file_values = section_values(read_config_file(config_file), kind)
    try:
        opts = take_config(cls, f"train.{kind}", options, file_values)
        opts.check_paths()  # type: ignore[attr-defined]
        opts.hyperparameters()  # type: ignore[attr-defined]
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return opts


def _train(
    kind: str,
    cls: type[C],
    config_file: Path | None,
    log_level: str,
    options: dict[str, Any],
    train: Callable[[C], Any],
    user_errors: tuple[type[Exception], ...] = (),
) -> None:
    """Read the options, train, show the table; a data or set-up problem is a ConfigError."""
    from selfalign.train.data import DataError

    setup_logging(log_level)
    opts = _options(cls, kind, config_file, options)
    try:
        result = train(opts)
    except (DataError, *user_errors) as exc:
        raise ConfigError(str(exc)) from exc
    _show(result)


def _show(result: Any) -> None:
    if not _is_main_process():
        return
    table = Table(title=f"train {result.kind} -> {result.out}", title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("base model", result.base_model)
    table.add_row("rows trained on", f"{result.rows_used} of {result.rows_read}")
    for reason, count in sorted(result.rows_skipped.items()):
        table.add_row(f"skipped: {reason}", str(count), style="yellow")
    table.add_row("optimizer steps", str(result.global_step))
    if result.train_loss is not None:
        table.add_row("mean training loss", f"{result.train_loss:.4f}")
    table.add_row("seconds", f"{result.seconds:.1f}")
    if result.resumed_from:
        table.add_row("resumed from", result.resumed_from)
    table.add_row("device", f"{result.device} ({result.precision})")
    for key, value in _metric_rows(result.metrics):
        table.add_row(key, value, style="green" if "accuracy" in key or "pass_rate" in key else "")
    console.print(table)


def _metric_rows(metrics: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            rows.extend(_metric_rows(value, f"{prefix}{key}."))
        elif isinstance(value, float):
            rows.append((f"{prefix}{key}", f"{value:.4g}"))
        else:
            rows.append((f"{prefix}{key}", "n/a" if value is None else str(value)))
    return rows


@click.group(name="train")
def train_group() -> None:
    """Fine-tune a model on the data set with TRL (sft, then dpo, reward or grpo)."""


@train_group.command(name="sft")
@_common_options
@config_options(SFTOptions)
@with_cli_errors
def sft_command(config_file: Path | None, log_level: str, **options: Any) -> None:
    """Supervised fine-tuning on the `messages` data set (loss on the answers only).

    Multi-GPU: accelerate launch -m selfalign.train.sft --data RUN/dataset --out DIR ...
    """
    from selfalign.train.sft import train_sft
    from selfalign.train.template import TemplateError

    _train("sft", SFTOptions, config_file, log_level, options, train_sft, (TemplateError,))


@train_group.command(name="dpo")
@_common_options
@config_options(DPOOptions)
@with_cli_errors
def dpo_command(config_file: Path | None, log_level: str, **options: Any) -> None:
    """Direct preference optimisation on the `pairs` data set (chosen vs rejected answers).

    Start from the SFT output with --model DIR. Multi-GPU:
    accelerate launch -m selfalign.train.dpo --data RUN/dataset --model SFT_DIR --out DIR ...
    """
    from selfalign.train.dpo import train_dpo

    _train("dpo", DPOOptions, config_file, log_level, options, train_dpo)


@train_group.command(name="reward")
@_common_options
@config_options(RewardOptions)
@with_cli_errors
def reward_command(config_file: Path | None, log_level: str, **options: Any) -> None:
    """Train a reward model on the `pairs` data set (chosen scored above rejected).

    The card and the table report the reward accuracy on held-out tasks. The output
    loads with AutoModelForSequenceClassification. Multi-GPU:
    accelerate launch -m selfalign.train.reward --data RUN/dataset --out DIR ...
    """
    from selfalign.train.reward import train_reward

    _train("reward", RewardOptions, config_file, log_level, options, train_reward)


@train_group.command(name="grpo")
@_common_options
@config_options(GRPOOptions)
@with_cli_errors
def grpo_command(config_file: Path | None, log_level: str, **options: Any) -> None:
    """GRPO on the tasks: answers rewarded by running the task's tests in the sandbox.

    Start from the SFT output with --model DIR. Held-out tasks go to OUT/heldout.jsonl,
    every reward round to OUT/rewards.jsonl. Multi-GPU:
    accelerate launch -m selfalign.train.grpo --data RUN/dataset --model SFT_DIR --out DIR ...
    """
    from selfalign.sandbox import SandboxConfig, SandboxUnavailable
    from selfalign.train.grpo import train_grpo
    from selfalign.train.sandbox_session import SandboxBroken

    try:
        sandbox = take_config(SandboxConfig, "sandbox", {}, read_config_file(config_file))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    _train(
        "grpo",
        GRPOOptions,
        config_file,
        log_level,
        options,
        lambda opts: train_grpo(opts, sandbox),
        (SandboxUnavailable, SandboxBroken),
    )
