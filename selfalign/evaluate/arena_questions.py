"""Arena questions: CodeArena's JSONL shape, read tolerantly, and the set we ship.

One JSON object per line. The fields CodeArena uses are read as they are, so its
file runs unchanged; common variants are accepted too:

* ``id`` (also ``question_id``, ``task_id``; else ``line-N``);
* ``messages``: a list of ``{"role", "content"}`` (CodeArena sometimes stores it as
  the list's text, JSON or Python literal; both are read), or a single ``question`` /
  ``prompt`` / ``instruction`` string; the conversation must end with a user turn;
* ``programming_language``: a string or a list of strings (also ``language``);
* ``difficulty`` (also ``level``);
* the category: ``category``, ``task_type``, or CodeArena's ``meta.parsed.task_type``
  (a list: its first entry);
* an optional baseline answer column, chosen with ``baseline_column``: a name, or
  ``auto`` for ``baseline`` / ``baseline_answer`` / the first ``*_response`` column
  (CodeArena ships ``gpt-4-turbo-2024-04-09_response``).

A line that cannot be used is skipped with its reason (`SkippedQuestion`), never
silently and never with a crash.
"""

from __future__ import annotations

import ast
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_QUESTIONS = "arena_questions.jsonl"
"""Our own question set, shipped in ``selfalign/evaluate/data/``."""

UNKNOWN = "unknown"
AUTO_BASELINE = "auto"
_ID_KEYS = ("id", "question_id", "task_id")
_TEXT_KEYS = ("question", "prompt", "instruction")
_LANGUAGE_KEYS = ("programming_language", "language", "languages", "lang")
_DIFFICULTY_KEYS = ("difficulty", "level")
_CATEGORY_KEYS = ("category", "task_type", "type")
_BASELINE_KEYS = ("baseline", "baseline_answer")


@dataclass(frozen=True)
class ArenaQuestion:
    """One question: the conversation to answer, how it is grouped, an optional baseline answer."""

    id: str
    messages: tuple[tuple[str, str], ...]
    """(role, content) pairs, ending with the user's turn."""
    languages: tuple[str, ...] = (UNKNOWN,)
    difficulty: str = UNKNOWN
    category: str = UNKNOWN
    baseline_answer: str | None = None

    def chat(self) -> list[dict[str, str]]:
        """The conversation as chat messages, ready for a backend."""
        return [{"role": role, "content": content} for role, content in self.messages]

    def text(self) -> str:
        """The question as the judge reads it: the user's message, or the whole exchange."""
        if len(self.messages) == 1:
            return self.messages[0][1]
        return "\n\n".join(f"[{role}]\n{content}" for role, content in self.messages)


@dataclass
class SkippedQuestion:
    """A line of the questions file that was not used, and why."""

    line: int
    id: str | None
    reason: str


@dataclass
class QuestionSet:
    """The questions read from one file, what was skipped, and the baseline column used."""

    path: str
    questions: list[ArenaQuestion] = field(default_factory=list)
    skipped: list[SkippedQuestion] = field(default_factory=list)
    baseline_column: str | None = None


def default_questions_path() -> Path:
    """Path of the question set shipped with selfalign."""
    return Path(str(resources.files("selfalign.evaluate").joinpath("data", DEFAULT_QUESTIONS)))


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if obj.get(key) not in (None, "", []):
            return obj[key]
    return None


def _messages(obj: dict[str, Any]) -> tuple[tuple[str, str], ...] | str:
    """The conversation, or the reason it cannot be read."""
    raw = obj.get("messages")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            try:
                raw = ast.literal_eval(raw)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return "messages is a string that is neither a JSON nor a Python list"
    if raw is None:
        text = _first(obj, _TEXT_KEYS)
        if not isinstance(text, str) or not text.strip():
            return "no messages and no question/prompt/instruction text"
        return (("user", text),)
    if not isinstance(raw, list) or not raw:
        return "messages is not a non-empty list"
    turns = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            return f"messages[{i}] is not an object with role and content"
        role, content = message.get("role"), message.get("content")
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            return f"messages[{i}] needs a role (system/user/assistant) and a string content"
        turns.append((role, content))
    if turns[-1][0] != "user" or not turns[-1][1].strip():
        return "the conversation must end with a non-empty user message"
    return tuple(turns)


def _languages(obj: dict[str, Any]) -> tuple[str, ...]:
    raw = _first(obj, _LANGUAGE_KEYS)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        return (UNKNOWN,)
    names = tuple(dict.fromkeys(str(x).strip() for x in raw if str(x).strip()))
    return names or (UNKNOWN,)


def _category(obj: dict[str, Any]) -> str:
    raw = _first(obj, _CATEGORY_KEYS)
    if raw is None:
        meta = obj.get("meta")
        parsed = meta.get("parsed") if isinstance(meta, dict) else None
        if isinstance(parsed, dict):
            raw = parsed.get("task_type")
        elif isinstance(meta, dict):
            raw = meta.get("task_type")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if not isinstance(raw, str) or not raw.strip():
        return UNKNOWN
    # CodeArena spells one category several ways ("code-refactoring", "Code Refactoring").
    return " ".join(raw.replace("-", " ").replace("_", " ").lower().split())


def _baseline_column(obj: dict[str, Any], wanted: str | None) -> str | None:
    if wanted is None:
        return None
    if wanted != AUTO_BASELINE:
        return wanted
    for key in _BASELINE_KEYS:
        if key in obj:
            return key
    responses = sorted(k for k in obj if k.endswith("_response"))
    return responses[0] if responses else None


def parse_question(
    obj: dict[str, Any], line: int, baseline_column: str | None
) -> ArenaQuestion | SkippedQuestion:
    """One question from one JSON object, or why it is skipped."""
    raw_id = _first(obj, _ID_KEYS)
    qid = str(raw_id) if raw_id is not None else f"line-{line}"
    messages = _messages(obj)
    if isinstance(messages, str):
        return SkippedQuestion(line, qid, messages)
    baseline = None
    if baseline_column is not None:
        value = obj.get(baseline_column)
        if not isinstance(value, str) or not value.strip():
            return SkippedQuestion(line, qid, f"no baseline answer in column {baseline_column!r}")
        baseline = value
    difficulty = _first(obj, _DIFFICULTY_KEYS)
    return ArenaQuestion(
        id=qid,
        messages=messages,
        languages=_languages(obj),
        difficulty=str(difficulty).strip().lower() if difficulty is not None else UNKNOWN,
        category=_category(obj),
        baseline_answer=baseline,
    )


def load_questions(
    path: Path | str | None = None,
    *,
    baseline_column: str | None = None,
    limit: int | None = None,
) -> QuestionSet:
    """Read a questions file (ours when ``path`` is None); ``limit`` keeps the first N usable.

    ``baseline_column`` names the column holding the baseline's answers (``auto``:
    find it); with ``None`` the baseline answers are generated by a model instead.
    """
    file = Path(path) if path is not None else default_questions_path()
    if not file.is_file():
        raise FileNotFoundError(
            f"questions file {file} does not exist; pass --questions with a JSONL file "
            "in CodeArena's shape, or leave it out to use the shipped set"
        )
    result = QuestionSet(path=str(file))
    seen: set[str] = set()
    column: str | None = None
    with file.open(encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                result.skipped.append(SkippedQuestion(number, None, f"not valid JSON: {exc}"))
                continue
            if not isinstance(obj, dict):
                result.skipped.append(SkippedQuestion(number, None, "not a JSON object"))
                continue
            if column is None and baseline_column is not None:
                column = _baseline_column(obj, baseline_column)
                if column is None:
                    raise ValueError(
                        f"no baseline column in {file} (looked for "
                        f"{', '.join(_BASELINE_KEYS)} and *_response): name it with "
                        "--baseline-column, or generate the baseline with --baseline MODEL"
                    )
            parsed = parse_question(obj, number, column)
            if isinstance(parsed, SkippedQuestion):
                result.skipped.append(parsed)
                continue
            if parsed.id in seen:
                result.skipped.append(SkippedQuestion(number, parsed.id, "duplicate id"))
                continue
            seen.add(parsed.id)
            result.questions.append(parsed)
            if limit is not None and len(result.questions) >= limit:
                break
    result.baseline_column = column
    for skip in result.skipped:
        logger.warning("questions %s line %d skipped: %s", file, skip.line, skip.reason)
    return result
