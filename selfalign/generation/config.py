"""Configuration of the generation stages (TOML `[concepts]`, `[tasks]`, `[respond]`).

Field names differ from `ModelConfig`'s so that one command can take both sets of options.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from selfalign.llm.base import SamplingParams

CATEGORIES = ("function", "class", "program")
DIFFICULTIES = ("easy", "medium", "hard")
PREFIX_FIELDS = ("category", "difficulty", "language")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class _StageConfig:
    temperature: float = field(default=0.7, metadata=_help("Sampling temperature (0: greedy)."))
    top_p: float = field(default=0.95, metadata=_help("Nucleus sampling: keep this much mass."))
    max_tokens: int = field(default=256, metadata=_help("Most tokens generated per answer."))
    stop: list[str] = field(
        default_factory=list,
        metadata=_help("Extra stop sequences (completion mode adds its own section markers)."),
    )
    seed: int = field(
        default=0,
        metadata=_help(
            "Seed for sampling and few-shot choice; the same seed regenerates the same."
        ),
    )
    repetition_penalty: float = field(
        default=1.0, metadata=_help("Above 1 discourages repetition (1: off).")
    )
    num_fewshot: int = field(default=8, metadata=_help("Few-shot examples per request."))
    answer_prefix: str = field(
        default="",
        metadata=_help(
            "First words of every answer, written for the model (a prefill) and kept in "
            "the parsed output. May use {category}, {difficulty} and {language}. Small "
            "models follow a format far better when it is started for them."
        ),
    )
    batch_size: int = field(
        default=16,
        metadata=_help(
            "Records per batch: each batch's prompts go to the engine together and "
            "are written as one shard (a kill loses at most one batch)."
        ),
    )
    limit: int = field(
        default=0, metadata=_help("Process only the first N input records (0: all).")
    )
    prompts_dir: str = field(
        default="",
        metadata=_help(
            "Directory with examples/*.toml and system/*.md (empty: the project's "
            "prompts/ directory)."
        ),
    )

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or more, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.num_fewshot < 0:
            raise ValueError(f"num_fewshot must be 0 or more, got {self.num_fewshot}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be positive, got {self.repetition_penalty}")
        if self.limit < 0:
            raise ValueError(f"limit must be 0 (all) or more, got {self.limit}")
        try:
            self.answer_prefix.format_map({name: "" for name in PREFIX_FIELDS})
        except (KeyError, ValueError, IndexError) as exc:
            raise ValueError(
                f"answer_prefix {self.answer_prefix!r} is not a valid template ({exc!r}); "
                f"it may use {', '.join('{' + name + '}' for name in PREFIX_FIELDS)} "
                "and must double literal braces"
            ) from None

    def answer_start(self, **fields: str) -> str:
        """``answer_prefix`` with its placeholders filled in."""
        return self.answer_prefix.format_map({k: fields.get(k, "") for k in PREFIX_FIELDS})

    def sampling(self, n: int = 1, extra_stop: tuple[str, ...] = ()) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            n=n,
            stop=tuple(dict.fromkeys([*self.stop, *extra_stop])),
            seed=self.seed,
            repetition_penalty=self.repetition_penalty,
        )


@dataclass
class ConceptsConfig(_StageConfig):
    """S→C: list the programming concepts each seed uses."""

    max_tokens: int = field(default=48, metadata=_help("Most tokens generated per concept list."))
    repetition_penalty: float = field(
        default=1.3,
        metadata=_help("Above 1 discourages repetition (1: off); small models loop on lists."),
    )

    max_concepts: int = field(
        default=8, metadata=_help("Keep at most this many concepts per seed.")
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_concepts < 1:
            raise ValueError(f"max_concepts must be at least 1, got {self.max_concepts}")


@dataclass
class TasksConfig(_StageConfig):
    """C→I: write one coding task per concept list, of a sampled category and difficulty."""

    max_tokens: int = field(default=192, metadata=_help("Most tokens generated per task."))
    language: str = field(
        default="python",
        metadata={"help": "Programming language of the tasks.", "choices": ("python",)},
    )
    category_weights: dict[str, float] = field(
        default_factory=lambda: {"function": 0.5, "class": 0.25, "program": 0.25},
        metadata=_help("Relative weight of each task category (TOML only)."),
    )
    difficulty_weights: dict[str, float] = field(
        default_factory=lambda: {d: 1.0 for d in DIFFICULTIES},
        metadata=_help("Relative weight of each difficulty (TOML only)."),
    )
    min_instruction_chars: int = field(
        default=20, metadata=_help("Shorter instructions are rejected as too short.")
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, allowed in (
            ("category_weights", CATEGORIES),
            ("difficulty_weights", DIFFICULTIES),
        ):
            weights = getattr(self, name)
            unknown = sorted(set(weights) - set(allowed))
            if unknown:
                raise ValueError(
                    f"{name} has unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}"
                )
            if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
                raise ValueError(f"{name} needs non-negative weights with a positive sum")


@dataclass
class RespondConfig(_StageConfig):
    """I→R: sample answers (response, solution and tests) for each task."""

    num_fewshot: int = field(default=1, metadata=_help("Few-shot examples per request."))
    max_tokens: int = field(default=512, metadata=_help("Most tokens generated per answer."))
    num_samples: int = field(
        default=10, metadata=_help("Answers sampled per task (use fewer on CPU).")
    )
    batch_size: int = field(
        default=8,
        metadata=_help("Tasks per batch (times num_samples sequences go to the engine together)."),
    )

    tests_prefill: bool = field(
        default=False,
        metadata=_help(
            "Answer in two steps: the implementation (cut after its first code block), "
            "then the tests, begun for the model as `### Tests`, a python fence and "
            "`assert <function>(`. For small models that never write tests unasked."
        ),
    )
    tests_max_tokens: int = field(
        default=128, metadata=_help("Most tokens of the tests step (with tests_prefill).")
    )
    tests_max_asserts: int = field(
        default=0,
        metadata=_help(
            "Keep only the first N statements of each answer's tests (0: all). A small "
            "model's first assert is its best; later ones are mostly noise. Fewer "
            "asserts make weaker tests: keep 0 for real models."
        ),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tests_max_asserts < 0:
            raise ValueError(
                f"tests_max_asserts must be 0 (all) or more, got {self.tests_max_asserts}"
            )
        if self.tests_max_tokens < 1:
            raise ValueError(f"tests_max_tokens must be at least 1, got {self.tests_max_tokens}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {self.num_samples}")
