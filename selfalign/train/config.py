"""Options of `selfalign train sft|dpo|reward|grpo`, and the named presets.

A preset is a full set of hyperparameters; every option left unset (``None``)
takes the preset's value, every option given on the command line or in the
config file wins. ``reference`` is the published recipe of each method (SFT:
SelfCodeAlign / StarCoder2-Instruct; GRPO: DeepSeekMath); ``demo`` is sized for
a few steps of the 135M model on a laptop CPU.
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
    """DPO and GRPO: strength of the KL penalty to the reference model."""
    num_generations: int = 0
    """GRPO only: completions sampled per prompt (the group whose rewards are compared)."""
    max_completion_length: int = 0
    """GRPO only: tokens per sampled completion."""
    temperature: float = 1.0
    """GRPO only: sampling temperature of the completions."""


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
    "reward": {
        # InstructGPT's reward models: one epoch (more overfits), lr ~1e-5; TRL's
        # Bradley-Terry loss. Batch and length as the SFT reference.
        "reference": Preset(
            optimizer="adamw_torch",
            learning_rate=1e-5,
            epochs=1.0,
            max_steps=-1,
            per_device_batch_size=4,
            effective_batch_size=64,
            warmup_ratio=0.03,
            lr_scheduler="linear",
            max_length=1280,
            dropout=0.0,
            gradient_checkpointing=True,
            save_steps=200,
        ),
        "demo": Preset(
            optimizer="adamw_torch",
            learning_rate=5e-5,
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
        ),
    },
    "grpo": {
        # DeepSeekMath (Shao et al., 2024), the paper that introduced GRPO: lr 1e-6,
        # KL coefficient 0.04, completions of up to 1024 tokens, one policy update
        # per generation round. It samples 64 completions per question in batches of
        # 1024; a group of 16 in batches of 256 fits one 8-GPU node.
        "reference": Preset(
            optimizer="adamw_torch",
            learning_rate=1e-6,
            epochs=1.0,
            max_steps=-1,
            per_device_batch_size=16,
            effective_batch_size=256,
            warmup_ratio=0.0,
            lr_scheduler="constant",
            max_length=1024,
            dropout=0.0,
            gradient_checkpointing=True,
            save_steps=50,
            beta=0.04,
            num_generations=16,
            max_completion_length=1024,
            temperature=1.0,
        ),
        # One prompt x 4 completions of 128 tokens per step: ~10-20 s a step for the
        # 135M model on 2 CPU cores. Temperature 0.8 keeps its code mostly readable.
        "demo": Preset(
            optimizer="adamw_torch",
            learning_rate=5e-6,
            epochs=1.0,
            max_steps=6,
            per_device_batch_size=4,
            effective_batch_size=4,
            warmup_ratio=0.0,
            lr_scheduler="constant",
            max_length=256,
            dropout=0.0,
            gradient_checkpointing=False,
            save_steps=3,
            beta=0.0,
            num_generations=4,
            max_completion_length=128,
            temperature=0.8,
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


SOURCES = ("all", "execution", "judge", "both")
"""Which pairs a reward model trains on, by their ``preference_source``."""


@dataclass
class RewardOptions(TrainOptions):
    """`selfalign train reward`: a Bradley-Terry reward model on the `pairs` data set."""

    source: str = field(
        default="all",
        metadata={
            "help": "Pairs to train on, by preference_source: 'execution' (pass vs fail), "
            "'judge' (best vs worst rated), 'both' (pairs both agree on) or 'all'.",
            "choices": SOURCES,
        },
    )
    eval_fraction: float = field(
        default=0.2,
        metadata={
            "help": "Share of the tasks held out to measure reward accuracy (a task's pairs "
            "stay on one side; seeded by --seed)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} is unknown; choose one of {SOURCES}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")

    @property
    def kind(self) -> str:
        return "reward"


_VLLM_MODES = ("colocate", "server")


@dataclass
class GRPOOptions(TrainOptions):
    """`selfalign train grpo`: GRPO on the tasks, rewarded by running their tests in the sandbox."""

    num_generations: int | None = field(
        default=None,
        metadata={"help": "Completions sampled per task; their rewards are compared in a group."},
    )
    max_completion_length: int | None = field(
        default=None, metadata={"help": "Tokens per sampled completion."}
    )
    temperature: float | None = field(
        default=None, metadata={"help": "Sampling temperature of the completions."}
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of the completions."})
    beta: float | None = field(
        default=None,
        metadata={"help": "KL penalty towards the starting model (0: no reference model kept)."},
    )
    execution_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the execution reward (1 when the task's own tests pass)."},
    )
    format_weight: float = field(
        default=0.2,
        metadata={
            "help": "Weight of the format reward (1 for one parsable code block defining the "
            "functions the tests call)."
        },
    )
    reward_model: str = field(
        default="",
        metadata={"help": "A reward model directory (selfalign train reward) to add as a reward."},
    )
    reward_model_weight: float = field(
        default=0.5, metadata={"help": "Weight of the reward model's score."}
    )
    partial_credit: bool = field(
        default=False,
        metadata={
            "help": "Execution reward = share of the tests' top-level asserts that pass, instead "
            "of 1 only when all do."
        },
    )
    expectation_checks: int = field(
        default=3,
        metadata={
            "help": "Copies of the tests with one expected value changed, run on each passing "
            "completion: one that still passes them all games the tests (0: static check only)."
        },
    )
    screen_tasks: bool = field(
        default=True,
        metadata={
            "help": "Before training, keep only the tasks whose tests the verifier calls strong "
            "(reference passes; null implementation and mutants fail)."
        },
    )
    heldout_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Share of the tasks kept out of training (written to OUT/heldout.jsonl for "
            "the before/after evaluation; seeded by --seed)."
        },
    )
    sandbox: str | None = field(
        default=None,
        metadata={
            "help": "Sandbox backend for the execution reward (default: [sandbox] backend, "
            "else docker).",
            "choices": ("docker", "bwrap"),
        },
    )
    sandbox_workers: int | None = field(
        default=None,
        metadata={"help": "Sandboxes running completions in parallel (default: [sandbox])."},
    )
    sandbox_timeout_s: float | None = field(
        default=None,
        metadata={"help": "Seconds per completion's program (default: [sandbox], else 10)."},
    )
    sandbox_retries: int = field(
        default=1,
        metadata={
            "help": "Extra runs of a program the sandbox failed on (sandbox_error) before its "
            "completion is left out of the step."
        },
    )
    use_vllm: bool = field(
        default=False,
        metadata={"help": "Generate with vLLM (GPU; needs the [vllm] extra)."},
    )
    vllm_mode: str = field(
        default="colocate",
        metadata={
            "help": "vLLM inside the training processes ('colocate') or a `trl vllm-serve` "
            "server ('server').",
            "choices": _VLLM_MODES,
        },
    )
    vllm_server_base_url: str = field(
        default="", metadata={"help": "--vllm-mode server: the server's URL."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_generations is not None and self.num_generations < 2:
            raise ValueError("GRPO compares completions of one task: use num_generations >= 2")
        if self.max_completion_length is not None and self.max_completion_length < 1:
            raise ValueError("max_completion_length must be a positive number of tokens")
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError("GRPO samples: use a positive temperature (e.g. 0.8)")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.beta is not None and self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        for name in ("execution_weight", "format_weight", "reward_model_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.execution_weight == 0 and self.format_weight == 0 and not self.reward_model:
            raise ValueError("every reward weight is 0: nothing to learn from")
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {self.heldout_fraction}")
        if self.sandbox_workers is not None and self.sandbox_workers < 1:
            raise ValueError("sandbox_workers must be at least 1")
        if self.sandbox_timeout_s is not None and self.sandbox_timeout_s <= 0:
            raise ValueError("sandbox_timeout_s must be positive")
        if self.sandbox_retries < 0:
            raise ValueError("sandbox_retries must be >= 0")
        if self.expectation_checks < 0:
            raise ValueError("expectation_checks must be >= 0 (0: static gaming check only)")
        if self.vllm_mode not in _VLLM_MODES:
            raise ValueError(f"vllm_mode must be one of {_VLLM_MODES}")

    @property
    def kind(self) -> str:
        return "grpo"

    def hyperparameters(self, world_size: int | None = None) -> Hyperparameters:
        hp = super().hyperparameters(world_size)
        preset = PRESETS["grpo"][self.preset]
        hp.beta = self.beta if self.beta is not None else preset.beta
        hp.num_generations = self.num_generations or preset.num_generations
        hp.max_completion_length = self.max_completion_length or preset.max_completion_length
        hp.temperature = self.temperature if self.temperature is not None else preset.temperature
        if hp.effective_batch_size % hp.num_generations:
            raise ValueError(
                f"a step's {hp.effective_batch_size} completions must hold whole groups of "
                f"{hp.num_generations}: make --effective-batch-size a multiple of "
                "--num-generations"
            )
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
    num_generations: int = 0
    max_completion_length: int = 0
    temperature: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """The settings that apply to this kind of training (GRPO's sampling only for GRPO)."""
        out = asdict(self)
        if not self.num_generations:
            for name in ("num_generations", "max_completion_length", "temperature"):
                out.pop(name)
        return out


def _world_size() -> int:
    """Processes `accelerate launch` / `torchrun` started (1 when run directly)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1
