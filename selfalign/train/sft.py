"""Supervised fine-tuning with TRL's `SFTTrainer` on the `messages` data set.

Run it as `selfalign train sft ...`, or on several GPUs as
`accelerate launch -m selfalign.train.sft --data RUN/dataset --out DIR ...`
(the same options).
"""

from __future__ import annotations

import logging
from typing import Any

from selfalign.train.common import (
    TrainResult,
    load_model,
    load_tokenizer,
    lora_config,
    pick_device,
    resolve_model_name,
    run_training,
    trainer_arguments,
    training_context,
)
from selfalign.train.config import SFTOptions
from selfalign.train.data import load_training_data
from selfalign.train.template import INSTRUCT_TEMPLATE, training_template

logger = logging.getLogger(__name__)


def build_sft_trainer(
    opts: SFTOptions, callbacks: list[Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The configured `SFTTrainer` and what the card needs to know about its making."""
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    opts.check_paths()
    data = load_training_data(opts.data, "sft")
    hp = opts.hyperparameters()
    device = pick_device(opts.cpu)
    base = resolve_model_name(opts.model)
    tokenizer = load_tokenizer(base)
    template_source: str | None = None
    if opts.assistant_only_loss:
        template, template_source = training_template(tokenizer, opts.chat_template)
        tokenizer.chat_template = template
    elif not tokenizer.chat_template:
        tokenizer.chat_template = INSTRUCT_TEMPLATE
        template_source = "selfalign instruction template (the model had none)"
    if template_source:
        logger.info("chat template for training: %s", template_source)
    model = load_model(base, hp, device)
    args = SFTConfig(
        **trainer_arguments(opts, hp, device),
        assistant_only_loss=opts.assistant_only_loss,
        packing=opts.packing,
        dataset_num_proc=None,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=data.to_dataset(),
        processing_class=tokenizer,
        peft_config=lora_config(opts),
        callbacks=list(callbacks or []),
    )
    context = training_context("sft", opts, hp, device, base, data, template_source)
    return trainer, context


def train_sft(opts: SFTOptions, callbacks: list[Any] | None = None) -> TrainResult:
    """Fine-tune ``opts.model`` on ``opts.data``, resuming from ``opts.out``'s last checkpoint."""
    trainer, context = build_sft_trainer(opts, callbacks)
    return run_training(trainer, **context)


if __name__ == "__main__":
    from selfalign.train.cli import sft_command

    sft_command(prog_name="selfalign train sft")
