"""Benchmark decontamination against HumanEval and user benchmark files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.decontam import Decontaminator
from selfalign.sandbox.humaneval import load_problems


def _humaneval() -> list[dict[str, str]]:
    return load_problems()


def test_humaneval_prompt_and_solution_are_found() -> None:
    problems = _humaneval()
    deco = Decontaminator.load()
    pasted = "import math\n\n" + problems[0]["prompt"] + problems[0]["canonical_solution"]
    assert deco.match(pasted) == "humaneval:HumanEval/0 ngram"
    # Reformatted copy: other whitespace and case do not hide it.
    body = problems[0]["canonical_solution"].upper().replace("    ", "\t")
    assert deco.match(body) is not None


def test_solution_body_found_below_ngram_length() -> None:
    deco = Decontaminator.load(ngram=50)
    problems = _humaneval()
    long_bodies = [p for p in problems if len(" ".join(p["canonical_solution"].split())) >= 40]
    item = long_bodies[0]
    text = "def anything(x):\n" + item["canonical_solution"]
    assert deco.match(text) == f"humaneval:{item['task_id']} solution"


def test_ordinary_code_is_not_matched() -> None:
    deco = Decontaminator.load()
    code = (
        "def debug_level(flag: bool) -> int:\n"
        "    '''Return the debug verbosity chosen by the flag.'''\n"
        "    return 2 if flag else 0\n"
    )
    assert deco.match(code) is None
    # Short generic solutions such as HumanEval/23's ``return len(string)`` are not a match.
    assert deco.match("def size(string):\n    return len(string)\n") is None


def test_user_benchmark_file(tmp_path: Path) -> None:
    bench = tmp_path / "bench.jsonl"
    rows = [
        {
            "task_id": "Mine/1",
            "prompt": "def zigzag(a, b):\n    '''Interleave two sequences item by item.'''\n",
            "solution": "    return [x for pair in zip(a, b) for x in pair]\n",
        }
    ]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    deco = Decontaminator.load(humaneval=False, benchmark_files=[bench], ngram=8)
    assert deco.match("x = 1\n" + rows[0]["prompt"]) == "bench:Mine/1 ngram"
    assert deco.match("def other(a):\n    return a\n") is None


def test_bad_benchmark_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(ValueError, match="missing.jsonl"):
        Decontaminator.load(benchmark_files=[missing])
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text('{"prompt": "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="garbled.jsonl line 1"):
        Decontaminator.load(benchmark_files=[garbled])
    fieldless = tmp_path / "fieldless.jsonl"
    fieldless.write_text('{"question": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="fieldless.jsonl line 1 needs"):
        Decontaminator.load(benchmark_files=[fieldless])
