"""Direct preference optimisation with TRL's `DPOTrainer` on the `pairs` data set.

Start from the SFT output (`--model DIR`) or any model. The reference model is a
frozen copy of the starting model (with LoRA: the same model, adapters disabled).
Multi-GPU: `accelerate launch -m selfalign.train.dpo --data RUN/dataset --out DIR ...`.
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
from selfalign.train.config import DPOOptions
from selfalign.train.data import load_training_data
from selfalign.train.template import INSTRUCT_TEMPLATE

logger = logging.getLogger(__name__)


def build_dpo_trainer(
    opts: DPOOptions, callbacks: list[Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The configured `DPOTrainer` and what the card needs to know about its making."""
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    opts.check_paths()
    data = load_training_data(opts.data, "pairs")
    hp = opts.hyperparameters()
    device = pick_device(opts.cpu)
    base = resolve_model_name(opts.model)
    tokenizer = load_tokenizer(base)
    template_source: str | None = None
    if not tokenizer.chat_template:
        # The pairs are conversations; a base model needs a template to render them.
        tokenizer.chat_template = INSTRUCT_TEMPLATE
        template_source = "selfalign instruction template (the model had none)"
    model = load_model(base, hp, device)
    args = DPOConfig(**trainer_arguments(opts, hp, device), beta=hp.beta)
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=data.to_dataset(),
        processing_class=tokenizer,
        peft_config=lora_config(opts),
        callbacks=list(callbacks or []),
    )
    context = training_context("dpo", opts, hp, device, base, data, template_source)
    return trainer, context


def train_dpo(opts: DPOOptions, callbacks: list[Any] | None = None) -> TrainResult:
    """Preference-tune ``opts.model`` on ``opts.data``; resumes from ``opts.out``."""
    trainer, context = build_dpo_trainer(opts, callbacks)
    return run_training(trainer, **context)


if __name__ == "__main__":
    from selfalign.train.cli import dpo_command

    dpo_command(prog_name="selfalign train dpo")
