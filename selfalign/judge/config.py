"""Configuration of the judge stage (TOML section ``[judge]``; its model is ``[judge.model]``).

The judge's model is a ``ModelConfig`` of its own, so a run can generate with a
small base model and judge with a stronger one on a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from selfalign.judge.rubrics import PREFERENCES
from selfalign.llm.base import SamplingParams

SWAP_ORDERS = ("reverse", "shuffle")
TASK_CHOICES = ("with_pass", "all")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class JudgeConfig:
    """How a judge model rates each task's answers on the coding preferences."""

    enabled: bool = field(
        default=True,
        metadata=_help(
            "Judge at all. Off, the stage completes with no judgments (and the pairs stage "
            "makes execution pairs only)."
        ),
    )
    tasks: str = field(
        default="with_pass",
        metadata={
            "help": "Which tasks to judge: 'with_pass' (those with a passing answer: only they "
            "can give an example, a judge pair or a ratings row) or 'all'.",
            "choices": TASK_CHOICES,
        },
    )
    preferences: list[str] = field(
        default_factory=lambda: list(PREFERENCES),
        metadata={
            "help": "Coding preferences to rate, one judge call per task and preference.",
            "choices": PREFERENCES,
        },
    )
    max_responses: int = field(
        default=4,
        metadata=_help(
            "Most answers of one task judged together (passing and failing alternate, "
            "by sample order); the rest are skipped as over_cap."
        ),
    )
    skip_parse_errors: bool = field(
        default=True,
        metadata=_help("Skip answers whose output could not be split into solution and tests."),
    )
    max_response_chars: int = field(
        default=4000,
        metadata=_help("Cut each answer to this many characters in the judge prompt (0: no cut)."),
    )
    swap: bool = field(
        default=False,
        metadata=_help(
            "Judge every task twice, the second time in another order, and average the "
            "two ratings (counters position bias; doubles the judge calls)."
        ),
    )
    swap_order: str = field(
        default="reverse",
        metadata={
            "help": "The second order with swap: 'reverse' of the first, or a second seeded "
            "'shuffle' (different from the first where possible).",
            "choices": SWAP_ORDERS,
        },
    )
    seed: int = field(
        default=0,
        metadata=_help("Seed of the presentation orders and of sampling; same seed, same orders."),
    )
    temperature: float = field(
        default=0.0, metadata=_help("Sampling temperature of the judge (0: greedy).")
    )
    top_p: float = field(default=1.0, metadata=_help("Nucleus sampling: keep this much mass."))
    max_tokens: int = field(
        default=512,
        metadata=_help("Most tokens of one judgment (all answers of a task together)."),
    )
    repetition_penalty: float = field(
        default=1.0, metadata=_help("Above 1 discourages repetition (1: off).")
    )
    prefill: bool = field(
        default=False,
        metadata=_help(
            "Start every judgment for the model with the first heading and 'Rating:' "
            "(small models keep a format far better when it is started for them)."
        ),
    )
    retry_temperature: float = field(
        default=0.7,
        metadata=_help(
            "Temperature of the one retry of an unreadable judgment (the retry is also "
            "prefilled, so it differs from the first try even at 0)."
        ),
    )
    batch_size: int = field(
        default=8,
        metadata=_help(
            "Tasks per batch: all their (task, preference) prompts go to the engine "
            "together, then one more call for the retries; one output shard per batch."
        ),
    )
    limit: int = field(default=0, metadata=_help("Judge only the first N tasks (0: all)."))
    prompts_dir: str = field(
        default="",
        metadata=_help(
            "Directory holding judge/system.md, judge/format.md and judge/rubrics/ "
            "(empty: the project's prompts/ directory)."
        ),
    )

    def __post_init__(self) -> None:
        if not self.preferences:
            raise ValueError("preferences is empty: name at least one of " + ", ".join(PREFERENCES))
        unknown = [p for p in self.preferences if p not in PREFERENCES]
        if unknown:
            raise ValueError(
                f"unknown preference {unknown[0]!r}; choose from: {', '.join(PREFERENCES)}"
            )
        if len(set(self.preferences)) != len(self.preferences):
            raise ValueError(f"preferences lists one twice: {self.preferences}")
        if self.tasks not in TASK_CHOICES:
            raise ValueError(f"tasks must be one of {', '.join(TASK_CHOICES)}, got {self.tasks!r}")
        if self.swap_order not in SWAP_ORDERS:
            raise ValueError(
                f"swap_order must be one of {', '.join(SWAP_ORDERS)}; got {self.swap_order!r}"
            )
        for name in ("max_responses", "max_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_response_chars", "limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (no limit) or more, got {getattr(self, name)}")
        for name in ("temperature", "retry_temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (greedy) or more, got {getattr(self, name)}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be positive, got {self.repetition_penalty}")

    @property
    def rounds(self) -> int:
        """Judge calls per task and preference: 2 with swap, else 1."""
        return 2 if self.swap else 1

    def sampling(self, stop: tuple[str, ...] = ()) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            n=1,
            stop=stop,
            seed=self.seed,
            repetition_penalty=self.repetition_penalty,
        )

    def retry_sampling(self, stop: tuple[str, ...] = ()) -> SamplingParams:
        return SamplingParams(
            temperature=self.retry_temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            n=1,
            stop=stop,
            seed=self.seed + 1,
            repetition_penalty=self.repetition_penalty,
        )

    def id_params(self) -> dict[str, Any]:
        """What, besides the prompts, makes a different judgment (part of the record id)."""
        return {
            "preferences": list(self.preferences),
            "max_responses": self.max_responses,
            "skip_parse_errors": self.skip_parse_errors,
            "max_response_chars": self.max_response_chars,
            "swap": self.swap,
            "swap_order": self.swap_order if self.swap else "",
            "seed": self.seed,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "repetition_penalty": self.repetition_penalty,
            "prefill": self.prefill,
            "retry_temperature": self.retry_temperature,
        }
