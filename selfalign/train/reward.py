"""Reward modelling with TRL's `RewardTrainer` on the `pairs` data set.

A Bradley-Terry model (a sequence-classification head with one output) learns to
score the chosen answer of each pair above the rejected one. ``--source`` picks
the pairs by their ``preference_source`` (execution, judge, both). A seeded share
of the *tasks* is held out (all pairs of a task on one side, so a prompt seen in
training never measures the model), and the card reports the held-out reward
accuracy: the share of held-out pairs whose chosen answer scores above its
rejected one, before and after training.

The output loads with `AutoModelForSequenceClassification.from_pretrained(OUT)`;
:func:`load_reward_model` wraps it to score conversations, which is what the GRPO
reward uses. Multi-GPU: `accelerate launch -m selfalign.train.reward ...`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from selfalign.store import Rejection
from selfalign.train.common import (
    Device,
    TrainResult,
    drop_longer_than,
    load_tokenizer,
    lora_config,
    pick_device,
    resolve_model_name,
    run_training,
    trainer_arguments,
    training_context,
)
from selfalign.train.config import Hyperparameters, RewardOptions
from selfalign.train.data import DataError, TrainingData, load_training_data
from selfalign.train.template import INSTRUCT_TEMPLATE

logger = logging.getLogger(__name__)

Conversation = list[dict[str, str]]


def select_source(data: TrainingData, source: str) -> None:
    """Keep the pairs of ``source`` (``all`` keeps every pair); count the others as skipped."""
    if source == "all":
        return
    kept: list[dict[str, Any]] = []
    for row in data.rows:
        if row.get("preference_source") == source:
            kept.append(row)
            continue
        reason = f"source_not_{source}"
        data.skipped[reason] += 1
        data.rejections.append(Rejection(id=row.get("id", ""), reason=reason, record=row))
    data.rows = kept
    if not kept:
        raise DataError(
            f"no pair has preference_source {source!r} in {data.source}; "
            "pass --source all, or a source the data set has"
        )


def split_by_task(
    rows: Sequence[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held out): a seeded ``fraction`` of the tasks, with all their rows, held out.

    Rows without a ``task_id`` are grouped by their prompt. At least one task is held
    out when ``fraction`` > 0 and there are two tasks or more; none otherwise.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        key = row.get("task_id") or repr(row.get("prompt"))
        groups.setdefault(str(key), []).append(row)
    keys = sorted(groups)
    if fraction <= 0 or len(keys) < 2:
        return list(rows), []
    random.Random(seed).shuffle(keys)
    n_out = min(len(keys) - 1, max(1, round(fraction * len(keys))))
    out = set(keys[:n_out])
    train = [r for k in sorted(groups) if k not in out for r in groups[k]]
    held = [r for k in sorted(groups) if k in out for r in groups[k]]
    return train, held


def drop_long_pairs(data: TrainingData, tokenizer: Any, max_length: int) -> None:
    """Skip (and count) pairs whose chosen or rejected conversation is longer than
    ``max_length`` tokens: TRL would drop them without saying so."""

    def length(row: dict[str, Any]) -> int:
        return max(
            len(tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=True))
            for side in ("chosen", "rejected")
        )

    drop_longer_than(data, length, max_length, "longer_than_max_length", "id")
    if not data.rows:
        raise DataError(
            f"every pair is longer than --max-length {max_length} tokens; raise --max-length"
        )


def load_reward_base(path: str, hp: Hyperparameters, device: Device) -> Any:
    """``path`` as a one-output sequence classifier, every dropout set to ``hp.dropout``.

    A causal LM gets a new, randomly initialised score head (transformers warns).
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(path, num_labels=1)
    for attr in list(vars(config)):
        if attr.endswith(("dropout", "_pdrop")) and isinstance(getattr(config, attr), float):
            setattr(config, attr, hp.dropout)
    dtype = torch.bfloat16 if device.bf16 else torch.float32
    return AutoModelForSequenceClassification.from_pretrained(path, config=config, dtype=dtype)


@dataclass
class RewardScorer:
    """A reward model and its tokenizer: scores conversations (higher is better)."""

    model: Any
    tokenizer: Any
    device: str = "cpu"

    def score(self, conversations: Sequence[Conversation], batch_size: int = 8) -> list[float]:
        """One score per conversation (prompt turns then the answer), in input order."""
        import torch

        texts = [self.tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
        scores: list[float] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[start : start + batch_size],
                    return_tensors="pt",
                    padding=True,
                    padding_side="right",
                    add_special_tokens=False,
                ).to(self.device)
                with torch.inference_mode():
                    logits = self.model(**batch).logits[:, 0]
                scores.extend(float(x) for x in logits.float().cpu())
        finally:
            self.model.train(was_training)
        return scores


def load_reward_model(path: str, device: str = "cpu") -> RewardScorer:
    """The reward model saved by `selfalign train reward` in ``path``, ready to score."""
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer(path)
    if not tokenizer.chat_template:
        tokenizer.chat_template = INSTRUCT_TEMPLATE
    model = AutoModelForSequenceClassification.from_pretrained(path).to(device)
    model.config.pad_token_id = tokenizer.pad_token_id
    return RewardScorer(model=model, tokenizer=tokenizer, device=device)


def pair_accuracy(
    scorer: RewardScorer, rows: Sequence[dict[str, Any]], batch_size: int = 8
) -> dict[str, Any]:
    """Share of pairs whose chosen conversation scores strictly above the rejected one."""
    if not rows:
        return {"pairs": 0, "accuracy": None, "mean_margin": None}
    chosen = scorer.score([r["prompt"] + r["chosen"] for r in rows], batch_size)
    rejected = scorer.score([r["prompt"] + r["rejected"] for r in rows], batch_size)
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {
        "pairs": len(rows),
        "accuracy": round(sum(m > 0 for m in margins) / len(rows), 4),
        "mean_margin": round(sum(margins) / len(rows), 4),
    }


def _scorer(model: Any, tokenizer: Any) -> RewardScorer:
    return RewardScorer(model, tokenizer, str(next(model.parameters()).device))


def _training_rows(rows: Sequence[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])


def build_reward_trainer(
    opts: RewardOptions, callbacks: list[Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The configured `RewardTrainer` and what the card needs to know about its making."""
    from trl.trainer.reward_config import RewardConfig
    from trl.trainer.reward_trainer import RewardTrainer

    opts.check_paths()
    data = load_training_data(opts.data, "pairs", keep=("id", "task_id", "preference_source"))
    select_source(data, opts.source)
    hp = opts.hyperparameters()
    device = pick_device(opts.cpu)
    base = resolve_model_name(opts.model)
    tokenizer = load_tokenizer(base)
    template_source: str | None = None
    if not tokenizer.chat_template:
        tokenizer.chat_template = INSTRUCT_TEMPLATE
        template_source = "selfalign instruction template (the model had none)"
    drop_long_pairs(data, tokenizer, hp.max_length)
    train_rows, heldout = split_by_task(data.rows, opts.eval_fraction, opts.seed)
    if not heldout:
        logger.warning(
            "no pairs held out (%d task(s), --eval-fraction %s): the card has no reward accuracy",
            len({r.get("task_id") for r in data.rows}),
            opts.eval_fraction,
        )
    data.rows = train_rows  # the card's "rows trained on"; the held-out count is a metric
    model = load_reward_base(base, hp, device)
    model.config.pad_token_id = tokenizer.pad_token_id
    if not device.use_cpu:
        model.to("cuda")
    before = pair_accuracy(_scorer(model, tokenizer), heldout) if heldout else None
    arguments = trainer_arguments(opts, hp, device)
    arguments["max_length"] = None  # too-long pairs were counted and dropped above
    args = RewardConfig(**arguments, dataset_num_proc=None)
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=_training_rows(train_rows),
        processing_class=tokenizer,
        peft_config=lora_config(opts, task_type="SEQ_CLS"),
        callbacks=list(callbacks or []),
    )

    def metrics(trained: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": opts.source,
            "train_pairs": len(train_rows),
            "heldout_pairs": len(heldout),
            "heldout_tasks": len({r.get("task_id") or repr(r["prompt"]) for r in heldout}),
        }
        if heldout:
            model_now = trained.accelerator.unwrap_model(trained.model)
            after = pair_accuracy(_scorer(model_now, tokenizer), heldout)
            out["heldout_accuracy"] = after["accuracy"]
            out["heldout_mean_margin"] = after["mean_margin"]
            out["heldout_accuracy_before"] = before["accuracy"] if before else None
        return out

    context = training_context("reward", opts, hp, device, base, data, template_source, metrics)
    return trainer, context


def train_reward(opts: RewardOptions, callbacks: list[Any] | None = None) -> TrainResult:
    """Train a reward model on ``opts.data``'s pairs; resumes from ``opts.out``."""
    trainer, context = build_reward_trainer(opts, callbacks)
    return run_training(trainer, **context)


if __name__ == "__main__":
    from selfalign.train.cli import reward_command

    reward_command(prog_name="selfalign train reward")
