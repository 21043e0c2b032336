"""What every trainer shares: device and precision, model loading, trainer arguments,
checkpoint resume, saving (LoRA merged) and the model card.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfalign.store import atomic_write_text, dumps_line
from selfalign.train.card import write_card
from selfalign.train.config import Hyperparameters, TrainOptions
from selfalign.train.data import TrainingData

logger = logging.getLogger(__name__)

RESULT_FILE = "selfalign_train.json"
"""Machine-readable summary of a finished training run, next to the model."""
SKIPPED_FILE = "skipped_rows.jsonl"
"""Rows of the data set that were not trained on, each with its reason."""


@dataclass
class TrainResult:
    """What a finished training run reports (also saved as ``selfalign_train.json``)."""

    kind: str
    out: str
    base_model: str
    data: str
    rows_read: int
    rows_used: int
    rows_skipped: dict[str, int]
    hyperparameters: dict[str, Any]
    global_step: int
    train_loss: float | None
    seconds: float
    resumed_from: str | None
    device: str
    precision: str
    lora: bool
    extra: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    """What the run measured beyond the loss (reward accuracy, GRPO pass rate, ...)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_model_name(name: str) -> str:
    """`embedded` to the local copy of the embedded model; anything else unchanged."""
    from selfalign.llm.embedded import resolve_model

    return resolve_model(name)


@dataclass
class Device:
    """Where and in which precision training runs."""

    name: str
    precision: str
    use_cpu: bool

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16"


def pick_device(cpu: bool) -> Device:
    """bf16 on GPUs that support it, float32 elsewhere (CPU bf16 is slow and lossy)."""
    import torch

    if not cpu and torch.cuda.is_available():
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        return Device(name=torch.cuda.get_device_name(0), precision=precision, use_cpu=False)
    return Device(name="cpu", precision="fp32", use_cpu=True)


def load_model(path: str, hp: Hyperparameters, device: Device) -> Any:
    """The causal LM at ``path`` with every dropout of its config set to ``hp.dropout``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path)
    for attr in list(vars(config)):
        if attr.endswith(("dropout", "_pdrop")) and isinstance(getattr(config, attr), float):
            setattr(config, attr, hp.dropout)
    dtype = torch.bfloat16 if device.bf16 else torch.float32
    return AutoModelForCausalLM.from_pretrained(path, config=config, dtype=dtype)


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        # Padding positions are masked out of the loss and attention, so any token will do.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def trainer_arguments(opts: TrainOptions, hp: Hyperparameters, device: Device) -> dict[str, Any]:
    """The `TrainingArguments` both trainers share, from the resolved hyperparameters."""
    from transformers import TrainingArguments

    # transformers 5.x renamed gradient_checkpointing; older releases only know the old name.
    renamed = "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    checkpointing = "activation_checkpointing" if renamed else "gradient_checkpointing"
    return {
        "output_dir": opts.out,
        "optim": hp.optimizer,
        "learning_rate": hp.learning_rate,
        "num_train_epochs": hp.epochs,
        "max_steps": hp.max_steps,
        "per_device_train_batch_size": hp.per_device_batch_size,
        "gradient_accumulation_steps": hp.gradient_accumulation_steps,
        "warmup_steps": hp.warmup_ratio,  # a float below 1 is a ratio of the total steps
        "lr_scheduler_type": hp.lr_scheduler,
        "max_length": hp.max_length,
        checkpointing: hp.gradient_checkpointing,
        # Non-reentrant checkpointing works with frozen base weights (LoRA).
        f"{checkpointing}_kwargs": {"use_reentrant": False},
        "bf16": device.bf16,
        "fp16": False,
        "use_cpu": device.use_cpu,
        "save_strategy": "steps",
        "save_steps": hp.save_steps,
        "save_total_limit": opts.save_total_limit,
        "logging_steps": opts.logging_steps,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "seed": opts.seed,
        "data_seed": opts.seed,
    }


def lora_config(opts: TrainOptions, task_type: str = "CAUSAL_LM") -> Any:
    """LoRA on every linear layer; ``SEQ_CLS`` (reward models) also trains the score head."""
    if not opts.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=opts.lora_r,
        lora_alpha=opts.lora_alpha,
        lora_dropout=opts.lora_dropout,
        target_modules="all-linear",
        task_type=task_type,
    )


def checkpoint_to_resume(opts: TrainOptions) -> str | None:
    """The last checkpoint in ``opts.out`` when resuming; with ``--no-resume``, clear old ones."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(opts.out)
    if not out.is_dir():
        return None
    last = get_last_checkpoint(str(out))
    if last is None:
        return None
    if opts.resume:
        logger.info("resuming from %s", last)
        return last
    # Old checkpoints would be mixed with the new run's and picked by a later resume.
    for old in out.glob("checkpoint-*"):
        logger.warning("--no-resume: removing old checkpoint %s", old)
        shutil.rmtree(old, ignore_errors=True)
    return None


def run_training(
    trainer: Any,
    *,
    kind: str,
    opts: TrainOptions,
    hp: Hyperparameters,
    device: Device,
    base_model: str,
    data: TrainingData,
    template_source: str | None = None,
    metrics: Callable[[Any], dict[str, Any]] | None = None,
) -> TrainResult:
    """Train (resuming when asked), save the final model and its card, return the summary.

    ``metrics(trainer)``, called after training, adds what the run measured to the
    result and the card.
    """
    resume = checkpoint_to_resume(opts)
    start = time.monotonic()
    output = trainer.train(resume_from_checkpoint=resume)
    seconds = time.monotonic() - start
    result = TrainResult(
        kind=kind,
        out=opts.out,
        base_model=base_model,
        data=data.source,
        rows_read=data.read,
        rows_used=data.used,
        rows_skipped=dict(data.skipped),
        hyperparameters=hp.to_dict(),
        global_step=int(trainer.state.global_step),
        train_loss=_finite(getattr(output, "training_loss", None)),
        seconds=round(seconds, 2),
        resumed_from=resume,
        device=device.name,
        precision=device.precision,
        lora=opts.lora,
        extra={"chat_template": template_source} if template_source else {},
    )
    if metrics is not None:
        result.metrics = metrics(trainer)
    save_final(trainer, opts)
    if trainer.is_world_process_zero():
        out = Path(opts.out)
        write_card(out, result, opts)
        atomic_write_text(out / RESULT_FILE, json.dumps(result.to_dict(), indent=2) + "\n")
        if data.rejections:
            text = "".join(dumps_line(asdict(r)) for r in data.rejections)
            atomic_write_text(out / SKIPPED_FILE, text)
    return result


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def save_final(trainer: Any, opts: TrainOptions) -> None:
    """Save a model that `AutoModelForCausalLM.from_pretrained(out)` loads: LoRA is merged.

    The adapter alone is kept in ``out/adapter`` for those who want it.
    """
    out = Path(opts.out)
    if not opts.lora:
        trainer.save_model(str(out))
        return
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.save_pretrained(str(out / "adapter"))
    merged = model.merge_and_unload()
    merged.save_pretrained(str(out))
    trainer.processing_class.save_pretrained(str(out))


def drop_longer_than(
    data: TrainingData,
    length: Callable[[dict[str, Any]], int],
    max_length: int,
    reason: str,
    id_column: str,
) -> None:
    """Skip, count and keep the reason of rows whose ``length`` (in tokens) passes
    ``max_length``: TRL would cut or drop them without saying so."""
    from selfalign.store import Rejection

    kept: list[dict[str, Any]] = []
    for row in data.rows:
        n = length(row)
        if n <= max_length:
            kept.append(row)
            continue
        data.skipped[reason] += 1
        data.rejections.append(
            Rejection(
                id=str(row.get(id_column, "")),
                reason=reason,
                record=row,
                detail=f"{n} tokens > --max-length {max_length}",
            )
        )
    data.rows = kept


def training_context(
    kind: str,
    opts: TrainOptions,
    hp: Hyperparameters,
    device: Device,
    base: str,
    data: TrainingData,
    template_source: str | None,
    metrics: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``run_training`` that every kind of training passes."""
    context: dict[str, Any] = {
        "kind": kind,
        "opts": opts,
        "hp": hp,
        "device": device,
        "base_model": opts.model if opts.model == base else f"{opts.model} ({base})",
        "data": data,
        "template_source": template_source,
    }
    if metrics is not None:
        context["metrics"] = metrics
    return context
