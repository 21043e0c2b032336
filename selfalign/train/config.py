"""Options of `selfalign train sft` / `selfalign train dpo`, and the named presets.

A preset is a full set of hyperparameters; every option left unset (``None``)
takes the preset's value, every option given on the command line or in the
config file wins. ``reference`` is the SelfCodeAlign / StarCoder2-Instruct
recipe; ``demo`` is sized for a few dozen steps of the 135M model on a laptop CPU.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

PRESET_NAMES = ("demo", "reference")


@dataclass(frozen=True)
class Preset:
    """Hyperparameters of one training recipe (what `--preset` selects)."""

    optimizer: str
    learning_rate: float
    epochs: float
    max_steps: int
    """-1 trains for ``epochs``; a positive number stops after that many optimizer steps."""
    per_device_batch_size: int
    effective_batch_size: int
    """Examples per optimizer step over all devices; reached with gradient accumulation."""
    warmup_ratio: float
    lr_scheduler: str
    max_length: int
    dropout: float
    gradient_checkpointing: bool
    save_steps: int
    beta: float = 0.1
    """DPO only: strength of the KL penalty to the reference model."""


PRESETS: dict[str, dict[str, Preset]] = {
    "sft": {
        # The paper (SelfCodeAlign, StarCoder2-15B-Instruct): Adafactor, lr 1e-5,
        # 4 epochs, batch 64, warmup 0.05, linear decay, 1280 tokens, dropout 0.
        "reference": Preset(
            optimizer="adafactor",
            learning_rate=1e-5,
            epochs=4.0,
            max_steps=-1,
            per_device_batch_size=4,
            effective_batch_size=64,
            warmup_ratio=0.05,
            lr_scheduler="linear",
            max_length=1280,
            dropout=0.0,
            gradient_checkpointing=True,
            save_steps=200,
        ),
        # Three passes over the demo's few examples (a handful from a 135M model): a step
        # of 2 x ~250 tokens costs several seconds on 2 CPU cores (forward, backward,
        # AdamW). A fixed step count would train 2 examples for 10 epochs each.
        "demo": Preset(
            optimizer="adamw_torch",
            learning_rate=5e-5,
            epochs=3.0,
            max_steps=-1,
            per_device_batch_size=2,
            effective_batch_size=2,
            warmup_ratio=0.05,
            lr_scheduler="linear",
            max_length=384,
            dropout=0.0,
            gradient_checkpointing=False,
            save_steps=10,
        ),
    },
    "dpo": {
        # No DPO recipe in the paper; these follow the usual TRL/Zephyr choices
        # (lr 5e-7, beta 0.1) at the paper's batch and length.
        "reference": Preset(
            optimizer="adamw_torch",
            learning_rate=5e-7,
            epochs=1.0,
            max_steps=-1,
            per_device_batch_size=2,
            effective_batch_size=64,
            warmup_ratio=0.1,
            lr_scheduler="linear",
            max_length=1280,
            dropout=0.0,
            gradient_checkpointing=True,
            save_steps=200,
            beta=0.1,
        ),
        "demo": Preset(
            optimizer="adamw_torch",
            learning_rate=5e-6,
            epochs=1.0,
            max_steps=10,
            per_device_batch_size=2,
            effective_batch_size=2,
            warmup_ratio=0.0,
            lr_scheduler="linear",
            max_length=384,
            dropout=0.0,
            gradient_checkpointing=False,
            save_steps=5,
            beta=0.1,
        ),
    },
}

_OPTIMIZERS = ("adafactor", "adamw_torch", "adamw_torch_fused", "sgd")
_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")


@dataclass
class TrainOptions:
    """What every trainer takes. Options left at ``None`` come from the preset."""

    data: str = field(
        default="",
        metadata={
            "help": "The data set: a run's dataset directory (RUN/dataset, RUN itself) or a "
            ".jsonl / .parquet file, or a save_to_disk directory."
        },
    )
    model: str = field(
        default="embedded",
        metadata={
            "help": "Model to train: 'embedded' (SmolLM2-135M-Instruct), a local directory or a "
            "hub id."
        },
    )
    out: str = field(
        default="", metadata={"help": "Output directory (checkpoints, final model, card)."}
    )
    preset: str = field(
        default="demo",
        metadata={
            "help": "Hyperparameter recipe: 'reference' (the paper) or 'demo' (a few CPU steps).",
            "choices": PRESET_NAMES,
        },
    )
    max_steps: int | None = field(
        default=None,
        metadata={"help": "Stop after this many optimizer steps (-1: train for --epochs)."},
    )
    epochs: float | None = field(default=None, metadata={"help": "Passes over the data set."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate."})
    optimizer: str | None = field(
        default=None, metadata={"help": "Optimizer.", "choices": _OPTIMIZERS}
    )
    lr_scheduler: str | None = field(
        default=None,
        metadata={"help": "Learning-rate schedule after warm-up.", "choices": _SCHEDULERS},
    )
    warmup_ratio: float | None = field(
        default=None, metadata={"help": "Fraction of the steps spent warming the learning rate up."}
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "Examples per device per forward pass."}
    )
    effective_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Examples per optimizer step over all devices; gradient accumulation makes up "
            "the difference (must divide by batch size x number of devices)."
        },
    )
    max_length: int | None = field(
        default=None, metadata={"help": "Tokens per example (longer ones are truncated)."}
    )
    dropout: float | None = field(default=None, metadata={"help": "Dropout in the model."})
    gradient_checkpointing: bool | None = field(
        default=None,
        metadata={"help": "Recompute activations in the backward pass to save memory."},
    )
    lora: bool = field(
        default=False,
        metadata={"help": "Train LoRA adapters (peft) instead of every weight; merged on save."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA path."})
    save_steps: int | None = field(
        default=None, metadata={"help": "Save a resumable checkpoint every N optimizer steps."}
    )
    save_total_limit: int = field(
        default=2, metadata={"help": "Keep at most this many checkpoints (oldest deleted)."}
    )
    resume: bool = field(
        default=True,
        metadata={"help": "Continue from the last checkpoint in --out when there is one."},
    )
    logging_steps: int = field(default=5, metadata={"help": "Log the loss every N steps."})
    seed: int = field(default=42, metadata={"help": "Random seed (data order, init of adapters)."})
    cpu: bool = field(
        default=False, metadata={"help": "Train on the CPU even when a GPU is present."}
    )

    def __post_init__(self) -> None:
        if self.preset not in PRESET_NAMES:
            raise ValueError(f"preset {self.preset!r} is unknown; choose one of {PRESET_NAMES}")
        for name in ("learning_rate", "warmup_ratio", "dropout", "epochs"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        for name in ("batch_size", "effective_batch_size", "max_length", "save_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive number, got {value}")
        if self.max_steps is not None and self.max_steps == 0:
            raise ValueError("max_steps = 0 trains nothing; use -1 to train for --epochs")
        if self.lora_r < 1:
            raise ValueError(f"lora_r must be >= 1, got {self.lora_r}")

    @property
    def kind(self) -> str:
        return "sft"

    def check_paths(self) -> None:
        """Fail early when --data or --out is missing (the dataclass can be built without them)."""
        if not self.data:
            raise ValueError("no data set given: pass --data RUN/dataset (or a .jsonl file)")
        if not self.out:
            raise ValueError("no output directory given: pass --out DIR")

    def hyperparameters(self, world_size: int | None = None) -> Hyperparameters:
        """The preset with every option the user set laid over it."""
        preset = PRESETS[self.kind][self.preset]
        world = world_size if world_size is not None else _world_size()
        batch = self.batch_size or preset.per_device_batch_size
        effective = self.effective_batch_size or preset.effective_batch_size
        # A user who lowers the batch below the preset's effective batch on one device
        # means "this much per step": never accumulate to less than one batch.
        effective = max(effective, batch * world)
        if effective % (batch * world):
            raise ValueError(
                f"effective batch size {effective} is not a multiple of batch size {batch} x "
                f"{world} device(s); change --effective-batch-size or --batch-size"
            )
        return Hyperparameters(
            preset=self.preset,
            optimizer=self.optimizer or preset.optimizer,
            learning_rate=self.learning_rate
            if self.learning_rate is not None
            else preset.learning_rate,
            epochs=self.epochs if self.epochs is not None else preset.epochs,
            max_steps=self.max_steps if self.max_steps is not None else preset.max_steps,
            per_device_batch_size=batch,
            gradient_accumulation_steps=effective // (batch * world),
            effective_batch_size=effective,
            world_size=world,
            warmup_ratio=self.warmup_ratio
            if self.warmup_ratio is not None
            else preset.warmup_ratio,
            lr_scheduler=self.lr_scheduler or preset.lr_scheduler,
            max_length=self.max_length or preset.max_length,
            dropout=self.dropout if self.dropout is not None else preset.dropout,
            gradient_checkpointing=(
                self.gradient_checkpointing
                if self.gradient_checkpointing is not None
                else preset.gradient_checkpointing
            ),
            save_steps=self.save_steps or preset.save_steps,
            beta=preset.beta,
        )


@dataclass
class SFTOptions(TrainOptions):
    """`selfalign train sft`: supervised fine-tuning on the `messages` data set."""

    packing: bool = field(
        default=False,
        metadata={"help": "Pack several examples into each max-length sequence (faster on GPUs)."},
    )
    assistant_only_loss: bool = field(
        default=True,
        metadata={
            "help": "Compute the loss on the assistant turns only (not on the instructions)."
        },
    )
    chat_template: str | None = field(
        default=None,
        metadata={
            "help": "Jinja chat template file with {% generation %} markers for training, when the "
            "model's own template has none and is not one selfalign knows."
        },
    )


@dataclass
class DPOOptions(TrainOptions):
    """`selfalign train dpo`: direct preference optimisation on the `pairs` data set."""

    beta: float | None = field(
        default=None, metadata={"help": "KL penalty strength towards the reference model."}
    )

    @property
    def kind(self) -> str:
        return "dpo"

    def hyperparameters(self, world_size: int | None = None) -> Hyperparameters:
        hp = super().hyperparameters(world_size)
        if self.beta is not None:
            hp.beta = self.beta
        return hp


@dataclass
class Hyperparameters:
    """The resolved settings of one training run (written to the model card)."""

    preset: str
    optimizer: str
    learning_rate: float
    epochs: float
    max_steps: int
    per_device_batch_size: int
    gradient_accumulation_steps: int
    effective_batch_size: int
    world_size: int
    warmup_ratio: float
    lr_scheduler: str
    max_length: int
    dropout: float
    gradient_checkpointing: bool
    save_steps: int
    beta: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _world_size() -> int:
    """Processes `accelerate launch` / `torchrun` started (1 when run directly)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1
