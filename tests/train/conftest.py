"""A small data set in the export stage's layout, of short tasks: a CPU training step is cheap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _short_tasks(n: int) -> list[tuple[str, str, str]]:
    """(id, instruction, response) triples short enough for 128-token training on a CPU."""
    ops = [("add", "+"), ("sub", "-"), ("mul", "*"), ("mod", "%")]
    tasks = []
    for i in range(n):
        name, op = ops[i % len(ops)]
        k = i // len(ops) + 2
        instruction = f"Write a Python function `{name}_{k}(x)` that returns x {op} {k}."
        response = f"```python\ndef {name}_{k}(x):\n    return x {op} {k}\n```"
        tasks.append((f"task-{i:03d}", instruction, response))
    return tasks


def sft_rows(n: int = 16) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for task_id, instruction, response in _short_tasks(n):
        rows.append(
            {
                "id": task_id,
                "messages": [
                    {"role": "user", "content": instruction},
                    {"role": "assistant", "content": response},
                ],
                "seed_id": "seed-" + task_id,
            }
        )
    return rows


def pair_rows(n: int = 8) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for task_id, instruction, response in _short_tasks(n):
        wrong = response.replace("return x", "return -x")
        rows.append(
            {
                "id": "pair-" + task_id,
                "prompt": [{"role": "user", "content": instruction}],
                "chosen": [{"role": "assistant", "content": response}],
                "rejected": [{"role": "assistant", "content": wrong}],
            }
        )
    return rows


def write_dataset(root: Path, n_sft: int = 16, n_pairs: int = 8) -> Path:
    """RUN/dataset as the export stage writes it: JSONL files and a save_to_disk copy.

    The JSONL also holds two malformed rows, which training must skip and count.
    """
    from datasets import Dataset, DatasetDict

    root.mkdir(parents=True, exist_ok=True)
    sft, pairs = sft_rows(n_sft), pair_rows(n_pairs)
    bad = [
        {"id": "bad-no-answer", "messages": [{"role": "user", "content": "hi"}]},
        {"id": "bad-missing", "text": "no messages column"},
    ]
    with (root / "sft.jsonl").open("w") as handle:
        for row in sft + bad:
            handle.write(json.dumps(row) + "\n")
    with (root / "pairs.jsonl").open("w") as handle:
        for row in pairs:
            handle.write(json.dumps(row) + "\n")
    DatasetDict({"sft": Dataset.from_list(sft), "pairs": Dataset.from_list(pairs)}).save_to_disk(
        str(root / "hf")
    )
    return root


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("run") / "dataset")


@pytest.fixture(scope="session")
def embedded_model() -> str:
    from selfalign.llm.embedded import resolve_model

    return resolve_model("embedded")
