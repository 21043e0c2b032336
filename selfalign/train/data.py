"""Load the training data (`sft` messages, `pairs`, or GRPO `tasks`), check every row, count
what is skipped.

`--data` may name a run directory, its `dataset/` directory (the export stage's
output: `sft.jsonl`, `pairs.jsonl`, `hf/` from `save_to_disk`), a JSONL or
Parquet file, or a `save_to_disk` directory. The JSONL files are preferred when
present: they need no particular `datasets` version to read. A malformed row
never stops training and never disappears silently: it is skipped, counted by
reason and returned so the caller can write it next to the model.

``tasks`` (GRPO) are read from the SFT rows: the conversation without its answer is
the prompt, and the row's ``tests`` column is what the execution reward runs.
"""

from __future__ import annotations

import ast
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from selfalign.store import CorruptLine, Rejection, read_jsonl

logger = logging.getLogger(__name__)

Kind = Literal["sft", "pairs", "tasks"]
ROLES = ("system", "user", "assistant")
_FILE_OF: dict[str, str] = {"sft": "sft", "pairs": "pairs", "tasks": "sft"}
"""The data set config each kind is read from (GRPO tasks come from the SFT rows)."""


class DataError(ValueError):
    """The data set cannot be found or has no usable row. The message says what to pass."""


@dataclass
class TrainingData:
    """The checked rows of one data set, ready for a TRL trainer."""

    kind: Kind
    source: str
    rows: list[dict[str, Any]]
    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def used(self) -> int:
        return len(self.rows)

    def to_dataset(self) -> Any:
        """A `datasets.Dataset` holding only the training columns."""
        from datasets import Dataset

        return Dataset.from_list(self.rows)


def find_source(path: str | Path, kind: Kind) -> Path:
    """The file or `save_to_disk` directory that holds the `kind` rows under ``path``."""
    kind = _FILE_OF[kind]  # type: ignore[assignment]
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise DataError(f"data set {p} does not exist; pass --data RUN/dataset or a .jsonl file")
    # The export stage's layout (RUN/dataset/) is resolved by its own helper; exports
    # written before it moved there live in RUN/dataset/export/.
    from selfalign.curate.export import export_paths

    root = export_paths(p).root
    for base in (p, root, p / "dataset", root / "export", p / "export"):
        for name in (f"{kind}.jsonl", f"{kind}.parquet"):
            if (base / name).is_file():
                return base / name
        for hf in (base / "hf", base):
            if (hf / "dataset_dict.json").is_file() or (hf / "dataset_info.json").is_file():
                return hf
    raise DataError(
        f"no {kind} data in {p}: expected {kind}.jsonl, {kind}.parquet or a save_to_disk "
        f"directory there or in RUN/dataset/; run `selfalign export` first"
    )


def load_training_data(path: str | Path, kind: Kind, keep: Sequence[str] = ()) -> TrainingData:
    """Read and check the `kind` rows of the data set at ``path``.

    ``keep`` names raw columns to carry along as strings (``""`` when a row lacks one),
    e.g. ``task_id`` to split pairs by task.
    """
    source = find_source(path, kind)
    corrupt: list[CorruptLine] = []
    raw = _read_rows(source, kind, corrupt)
    data = TrainingData(kind=kind, source=str(source), rows=[])
    check = {"sft": check_sft_row, "pairs": check_pair_row, "tasks": check_task_row}[kind]
    for number, row in enumerate(raw, start=1):
        data.read += 1
        clean, reason = check(row)
        if clean is None:
            data.skipped[reason] += 1
            row_id = str(row.get("id", f"row-{number}"))
            data.rejections.append(Rejection(id=row_id, reason=reason, record=row))
            continue
        for column in keep:
            clean.setdefault(column, "" if row.get(column) is None else str(row[column]))
        data.rows.append(clean)
    for line in corrupt:
        data.read += 1
        data.skipped["corrupt_line"] += 1
        data.rejections.append(
            Rejection(
                id=f"line-{line.line_number}",
                reason="corrupt_line",
                record={"text": line.text},
                detail=line.error,
            )
        )
    if data.skipped:
        logger.warning(
            "%s: skipped %d of %d rows (%s)",
            source,
            sum(data.skipped.values()),
            data.read,
            ", ".join(f"{r} {n}" for r, n in data.skipped.most_common()),
        )
    if not data.rows:
        raise DataError(
            f"no usable {kind} row in {source} ({data.read} read, skipped: "
            f"{dict(data.skipped) or 'none'}); check the export stage's output"
        )
    return data


def _read_rows(source: Path, kind: Kind, corrupt: list[CorruptLine]) -> Iterator[dict[str, Any]]:
    if source.is_file() and source.suffix in (".jsonl", ".json"):
        yield from read_jsonl(source, corrupt)
        return
    if source.is_file() and source.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(source).to_pylist()
        return
    if source.is_dir():
        from datasets import Dataset, DatasetDict, load_from_disk

        loaded = load_from_disk(str(source))
        if isinstance(loaded, DatasetDict):
            split = _FILE_OF[kind]
            if split not in loaded:
                raise DataError(
                    f"{source} has no {split!r} split (it has {sorted(loaded)}); "
                    "pass the file or directory that holds it"
                )
            loaded = loaded[split]
        if not isinstance(loaded, Dataset):
            raise DataError(f"{source} is not a data set saved with save_to_disk")
        yield from _iter_dataset(loaded)
        return
    raise DataError(f"cannot read {source}: use a .jsonl, .parquet or save_to_disk directory")


def _iter_dataset(dataset: Any) -> Iterable[dict[str, Any]]:
    for row in dataset:
        yield dict(row)


def _check_messages(value: Any) -> tuple[list[dict[str, str]] | None, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None, "messages_not_a_list"
    if not isinstance(value, list) or not value:
        return None, "messages_not_a_list"
    out: list[dict[str, str]] = []
    for message in value:
        if not isinstance(message, dict):
            return None, "message_not_an_object"
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            return None, "unknown_role"
        if not isinstance(content, str):
            return None, "content_not_a_string"
        out.append({"role": role, "content": content})
    return out, ""


def check_sft_row(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """``({"messages": [...]}, "")`` for a good row, ``(None, reason)`` otherwise."""
    if "messages" not in row:
        return None, "missing_messages"
    messages, reason = _check_messages(row["messages"])
    if messages is None:
        return None, reason
    if not any(m["role"] == "user" for m in messages):
        return None, "no_user_turn"
    if messages[-1]["role"] != "assistant":
        return None, "last_turn_not_assistant"
    if not messages[-1]["content"].strip():
        return None, "empty_response"
    return {"messages": messages}, ""


def _as_turns(value: Any, role: str) -> list[dict[str, str]] | None:
    """TRL conversational form; a bare string becomes one message of ``role``."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    messages, _ = _check_messages(value)
    return messages


def check_pair_row(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """``({"prompt", "chosen", "rejected"}, "")`` for a good pair, ``(None, reason)`` otherwise."""
    for column in ("prompt", "chosen", "rejected"):
        if column not in row:
            return None, f"missing_{column}"
    prompt = _as_turns(row["prompt"], "user")
    chosen = _as_turns(row["chosen"], "assistant")
    rejected = _as_turns(row["rejected"], "assistant")
    if prompt is None or chosen is None or rejected is None:
        return None, "bad_messages"
    if prompt[-1]["role"] != "user":
        return None, "prompt_not_ending_with_user"
    if any(m["role"] != "assistant" for m in chosen + rejected):
        return None, "answer_not_assistant"
    text_chosen = "".join(m["content"] for m in chosen)
    text_rejected = "".join(m["content"] for m in rejected)
    if not text_chosen.strip() or not text_rejected.strip():
        return None, "empty_answer"
    if text_chosen == text_rejected:
        return None, "chosen_equals_rejected"
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}, ""


def check_task_row(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """``({"prompt", "tests", "task_id"}, "")`` for a task GRPO can reward, ``(None, reason)``.

    The prompt is the row's conversation up to its last user turn (a system turn is
    kept); the tests must be Python that parses, or no completion could ever pass.
    """
    if "messages" not in row:
        return None, "missing_messages"
    messages, reason = _check_messages(row["messages"])
    if messages is None:
        return None, reason
    while messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    if not messages or messages[-1]["role"] != "user":
        return None, "no_user_turn"
    if not messages[-1]["content"].strip():
        return None, "empty_instruction"
    tests = row.get("tests")
    if not isinstance(tests, str) or not tests.strip():
        return None, "missing_tests"
    try:
        ast.parse(tests)
    except (SyntaxError, ValueError):
        return None, "tests_do_not_parse"
    task_id = str(row.get("task_id") or row.get("id") or "")
    solution = row.get("solution")
    return {
        "prompt": messages,
        "tests": tests,
        "task_id": task_id,
        "solution": solution if isinstance(solution, str) else "",
    }, ""
