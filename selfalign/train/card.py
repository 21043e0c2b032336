"""The model card (README.md) written next to every trained model.

It says what the model was trained from and on, with which settings, by which
library versions, so a directory found later explains itself.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfalign.store import atomic_write_text

if TYPE_CHECKING:
    from selfalign.train.common import TrainResult
    from selfalign.train.config import TrainOptions

_TITLES = {
    "sft": "supervised fine-tuning (SFT)",
    "dpo": "direct preference optimisation (DPO)",
    "reward": "reward modelling (Bradley-Terry on chosen / rejected pairs)",
    "grpo": "GRPO (group relative policy optimisation) rewarded by sandboxed execution",
}
_LOADERS = {"reward": "AutoModelForSequenceClassification"}
"""The transformers class that loads each kind of output (default: a causal LM)."""
_PACKAGES = ("selfalign", "trl", "transformers", "torch", "peft", "accelerate", "datasets")


def versions() -> dict[str, str]:
    """Installed versions of the libraries that shaped the model."""
    found: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _yaml_value(value: Any) -> str:
    text = str(value)
    if any(ch in text for ch in ":#{}[],&*?|<>=!%@`'\"") or text != text.strip():
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def render_card(result: TrainResult, opts: TrainOptions) -> str:
    """The card's Markdown with YAML front matter (the keys the Hub reads)."""
    tags = ["selfalign", "trl", result.kind, "code"]
    if result.kind == "reward":
        tags.append("reward-model")
    if result.lora:
        tags.append("lora")
    lines = [
        "---",
        "library_name: transformers",
        f"base_model: {_yaml_value(result.base_model)}",
        "tags:",
        *[f"- {t}" for t in tags],
        "---",
        "",
        f"# {Path(result.out).name}",
        "",
        f"Trained by selfalign with {_TITLES.get(result.kind, result.kind)} from "
        f"`{result.base_model}`.",
        "",
        "## Data",
        "",
        f"- data set: `{result.data}`",
        f"- rows read: {result.rows_read}",
        f"- rows trained on: {result.rows_used}",
    ]
    for reason, count in sorted(result.rows_skipped.items()):
        lines.append(f"- rows skipped ({reason}): {count}")
    if result.rows_skipped:
        lines.append("- the skipped rows and their reasons are in `skipped_rows.jsonl`")
    lines += [
        "",
        "## Settings",
        "",
        f"Preset: `{opts.preset}`.",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    settings: dict[str, Any] = dict(result.hyperparameters)
    settings.update(
        {
            "lora": result.lora,
            "device": result.device,
            "precision": result.precision,
            "seed": opts.seed,
        }
    )
    if result.lora:
        settings.update(
            {
                "lora_r": opts.lora_r,
                "lora_alpha": opts.lora_alpha,
                "lora_dropout": opts.lora_dropout,
            }
        )
    for key in ("packing", "assistant_only_loss"):
        if hasattr(opts, key):
            settings[key] = getattr(opts, key)
    settings.update(result.extra)
    for key, value in settings.items():
        lines.append(f"| {key} | {value} |")
    loss = "n/a" if result.train_loss is None else f"{result.train_loss:.4f}"
    lines += [
        "",
        "## Result",
        "",
        f"- optimizer steps: {result.global_step}",
        f"- mean training loss: {loss}",
        f"- training time: {result.seconds:.0f} s"
        + (f" (resumed from `{result.resumed_from}`)" if result.resumed_from else ""),
        "",
    ]
    lines += _metric_lines(result.metrics)
    loader = _LOADERS.get(result.kind, "AutoModelForCausalLM")
    lines += [
        "## Versions",
        "",
        *[f"- {name} {version}" for name, version in versions().items()],
        "",
        f"Load it with `{loader}.from_pretrained(<this directory>)`.",
        "",
    ]
    return "\n".join(lines)


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    """An "Evaluation" section: one row per measured number (nested tables flattened)."""
    if not metrics:
        return []
    lines = ["## Evaluation", "", "| metric | value |", "|---|---|"]
    for key, value in _flatten(metrics):
        lines.append(f"| {key} | {_cell(value)} |")
    return [*lines, ""]


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(_flatten(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "n/a"
    return str(value).replace("|", "\\|")


def write_card(out: Path, result: TrainResult, opts: TrainOptions) -> Path:
    path = out / "README.md"
    atomic_write_text(path, render_card(result, opts))
    return path
