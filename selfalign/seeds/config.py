"""Configuration of the seeds stage (section ``[seeds]``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_EXCLUDES = [
    "*/test/*",
    "*/tests/*",
    "*/testing/*",
    "*/vendor/*",
    "*/_vendor/*",
    "*/vendored/*",
    "*/site-packages/*",
    "*/idlelib/*",
    "*/lib2to3/*",
    "*/turtledemo/*",
    "*/__pycache__/*",
    "*/test_*.py",
    "*/*_test.py",
    "*/conftest.py",
    "*/setup.py",
]

# Modules whose use makes a function about its environment (files, processes,
# the interpreter, the network) rather than about computation: such seeds lead
# to tasks whose tests cannot run in the sandbox.
DEFAULT_DENY_IMPORTS = [
    "os",
    "sys",
    "subprocess",
    "argparse",
    "shutil",
    "socket",
    "threading",
    "multiprocessing",
    "asyncio",
    "signal",
    "ctypes",
    "tempfile",
    "glob",
    "pathlib",
    "io",
    "logging",
    "getpass",
    "platform",
    "urllib",
    "http",
    "requests",
    "ssl",
    "select",
    "selectors",
    "pty",
    "tty",
    "termios",
    "fcntl",
    "resource",
    "sqlite3",
    "tkinter",
    "curses",
    "webbrowser",
    "importlib",
    "pickle",
    "shelve",
    "mmap",
]


def _cpu_count() -> int:
    return max(os.cpu_count() or 1, 1)


@dataclass
class SeedsConfig:
    """Where seeds come from and which functions are good enough to keep."""

    source: str = field(
        default="stdlib",
        metadata={
            "help": "Where to read Python files: 'stdlib' (this interpreter's standard library), "
            "a directory, a .jsonl/.parquet file with a 'content' column, or hf:DATASET[:CONFIG]."
        },
    )
    excludes: list[str] = field(
        default_factory=lambda: list(DEFAULT_EXCLUDES),
        metadata={"help": "Glob patterns of paths to skip (tests, vendored code)."},
    )
    include_methods: bool = field(
        default=False,
        metadata={"help": "Also harvest methods of classes, not only top-level functions."},
    )
    min_lines: int = field(default=3, metadata={"help": "Fewest lines a function may have."})
    max_lines: int = field(default=150, metadata={"help": "Most lines a function may have."})
    min_docstring_words: int = field(
        default=4, metadata={"help": "Fewest words a docstring must have to be meaningful."}
    )
    deny_imports: list[str] = field(
        default_factory=lambda: list(DEFAULT_DENY_IMPORTS),
        metadata={"help": "Top-level modules a seed may not use (its imports are checked)."},
    )
    require_return: bool = field(
        default=True, metadata={"help": "Keep only functions that return a value."}
    )
    require_parameters: bool = field(
        default=True, metadata={"help": "Keep only functions with at least one parameter."}
    )
    reject_todo: bool = field(
        default=True,
        metadata={"help": "Drop functions containing the words TODO, FIXME, XXX, HACK or BUG."},
    )
    max_file_bytes: int = field(
        default=1_000_000, metadata={"help": "Skip source files larger than this many bytes."}
    )
    typecheck: bool = field(
        default=True,
        metadata={"help": "Type check every candidate with pyright (drop on any error)."},
    )
    pyright_batch_size: int = field(
        default=256, metadata={"help": "Most functions per pyright process."}
    )
    pyright_workers: int = field(
        default_factory=_cpu_count, metadata={"help": "Pyright processes run in parallel."}
    )
    pyright_timeout_s: float = field(
        default=120.0,
        metadata={
            "help": "Seconds one pyright process may run before its batch is split and retried."
        },
    )
    decontaminate: bool = field(
        default=True, metadata={"help": "Drop seeds that overlap HumanEval or the benchmark files."}
    )
    decontam_ngram: int = field(
        default=10, metadata={"help": "Words in the n-gram that marks benchmark overlap."}
    )
    benchmark_files: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Extra benchmark JSONL files (prompt, solution) to decontaminate against."
        },
    )
    minhash_num_perm: int = field(default=250, metadata={"help": "MinHash permutations."})
    minhash_threshold: float = field(
        default=0.7, metadata={"help": "Jaccard similarity of near-duplicates."}
    )
    minhash_ngram: int = field(default=5, metadata={"help": "Words per shingle for MinHash."})
    dedup_workers: int = field(
        default=1, metadata={"help": "Worker processes computing MinHash signatures."}
    )
    # Each batch starts its own pyright processes (Node and typeshed load again):
    # on the stdlib, 256 files per batch made the stage 1.85x pyright alone, 1024
    # 1.33x (benchmarks/seeds.py). A kill still loses at most one batch.
    batch_size: int = field(
        default=1024,
        metadata={"help": "Source files per batch (one output shard and one pyright round)."},
    )
    limit: int = field(
        default=0,
        metadata={"help": "Stop once this many seeds passed the per-batch filters (0 = all)."},
    )

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError("source is empty; pass --source stdlib, a directory or a file")
        positive = {
            "min_lines": self.min_lines,
            "max_file_bytes": self.max_file_bytes,
            "pyright_batch_size": self.pyright_batch_size,
            "pyright_workers": self.pyright_workers,
            "decontam_ngram": self.decontam_ngram,
            "minhash_num_perm": self.minhash_num_perm,
            "minhash_ngram": self.minhash_ngram,
            "dedup_workers": self.dedup_workers,
            "batch_size": self.batch_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.max_lines < self.min_lines:
            raise ValueError(
                f"max_lines ({self.max_lines}) is below min_lines ({self.min_lines}); "
                "raise max_lines"
            )
        if self.min_docstring_words < 0 or self.limit < 0:
            raise ValueError("min_docstring_words and limit cannot be negative")
        if not 0.0 < self.minhash_threshold <= 1.0:
            raise ValueError(
                f"minhash_threshold must be in (0, 1], got {self.minhash_threshold}; "
                "0.7 is the reference"
            )
        if self.pyright_timeout_s <= 0:
            raise ValueError("pyright_timeout_s must be positive")
