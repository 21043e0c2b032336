"""Arena questions: the shipped set, CodeArena's own shape, and bad lines skipped with a reason."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from selfalign.evaluate.arena_questions import default_questions_path, load_questions


def test_the_shipped_set_is_broad_and_real_world() -> None:
    loaded = load_questions()
    questions = loaded.questions
    assert loaded.skipped == []
    assert len(questions) >= 60
    categories = Counter(q.category for q in questions)
    languages = Counter(lang for q in questions for lang in q.languages)
    assert len(categories) >= 10 and min(categories.values()) >= 4
    assert len(languages) >= 5
    assert {q.difficulty for q in questions} == {"easy", "medium", "hard"}
    for wanted in ("debugging", "refactoring", "explanation", "algorithm", "data processing",
                   "web", "shell", "sql", "testing", "performance"):
        assert wanted in categories, wanted
    # Real questions carry context (code, a trace, constraints), not one-line prompts.
    short = [q.id for q in questions if len(q.text()) < 250]
    assert not short, short
    with_code = sum("```" in q.text() for q in questions)
    assert with_code >= 0.75 * len(questions)
    assert all(q.messages[-1][0] == "user" for q in questions)
    assert all(q.baseline_answer is None for q in questions)


def test_the_shipped_file_is_codearena_shaped() -> None:
    lines = default_questions_path().read_text(encoding="utf-8").splitlines()
    for line in lines:
        record = json.loads(line)
        assert {"id", "messages", "programming_language", "difficulty", "category"} <= set(record)
        assert isinstance(record["programming_language"], list)
    assert len({json.loads(line)["id"] for line in lines}) == len(lines)


def _write(path: Path, records: Sequence[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records), encoding="utf-8"
    )  # no newline after the last line: downloaded files often end that way
    return path


CODEARENA_LINE = {
    # CodeArena's fields as its data card shows them: messages as the list's Python
    # text, the languages as a list, the category under meta.parsed.task_type, and
    # the GPT-4 baseline's answer in its own column.
    "id": "60670a8d9b1e39dd845fb1639d0d8b86",
    "messages": "[{'role': 'user', 'content': 'move gradient chart to the right side'}]",
    "gpt-4-turbo-2024-04-09_response": "<Box display='flex' justifyContent='flex-end'>",
    "difficulty": "easy",
    "programming_language": ["JavaScript"],
    "meta": {"parsed": {"task_type": ["Code-Modification"]}},
}


def test_a_codearena_line_runs_unchanged(tmp_path: Path) -> None:
    second = {
        **CODEARENA_LINE,
        "id": "b2",
        "messages": [{"role": "user", "content": "why is my SQL slow"}],
        "programming_language": "SQL",
    }
    loaded = load_questions(
        _write(tmp_path / "CodeArena.jsonl", [CODEARENA_LINE, second]), baseline_column="auto"
    )
    assert loaded.skipped == []
    assert loaded.baseline_column == "gpt-4-turbo-2024-04-09_response"
    first, other = loaded.questions
    assert first.id == "60670a8d9b1e39dd845fb1639d0d8b86"
    assert first.chat() == [{"role": "user", "content": "move gradient chart to the right side"}]
    assert first.languages == ("JavaScript",)
    assert first.category == "code modification"
    assert first.difficulty == "easy"
    assert first.baseline_answer == "<Box display='flex' justifyContent='flex-end'>"
    assert other.languages == ("SQL",)


def test_without_a_baseline_column_the_answers_are_not_read(tmp_path: Path) -> None:
    loaded = load_questions(_write(tmp_path / "q.jsonl", [CODEARENA_LINE]))
    assert loaded.baseline_column is None
    assert loaded.questions[0].baseline_answer is None


def test_auto_without_any_baseline_column_says_what_to_do(tmp_path: Path) -> None:
    plain = {"id": "a", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(ValueError, match="--baseline-column"):
        load_questions(_write(tmp_path / "q.jsonl", [plain]), baseline_column="auto")


def test_variants_are_accepted(tmp_path: Path) -> None:
    records = [
        {"question_id": 7, "prompt": "Explain this regex", "language": "Python", "level": "Hard",
         "task_type": "explanation"},
        {"task_id": "t", "messages": [{"role": "system", "content": "be brief"},
                                      {"role": "user", "content": "fix it"}]},
    ]
    first, second = load_questions(_write(tmp_path / "q.jsonl", records)).questions
    assert (first.id, first.text(), first.languages, first.difficulty, first.category) == (
        "7", "Explain this regex", ("Python",), "hard", "explanation",
    )
    assert second.id == "t" and second.category == "unknown" and second.languages == ("unknown",)
    assert "[system]\nbe brief" in second.text() and second.text().endswith("fix it")


def test_bad_lines_are_skipped_with_their_reason(tmp_path: Path) -> None:
    good = {"id": "ok", "messages": [{"role": "user", "content": "a question"}]}
    records: list[object] = [
        good,
        "{not json",
        "[1, 2]",
        {"id": "no-text"},
        {"id": "ends-with-answer", "messages": [{"role": "user", "content": "q"},
                                                {"role": "assistant", "content": "a"}]},
        {"id": "bad-role", "messages": [{"role": "robot", "content": "q"}]},
        {"id": "bad-string", "messages": "this is not a list"},
        good,
        "",
    ]
    loaded = load_questions(_write(tmp_path / "q.jsonl", records))
    assert [q.id for q in loaded.questions] == ["ok"]
    reasons = {(s.line, s.reason.split(":")[0].split(" (")[0]) for s in loaded.skipped}
    assert reasons == {
        (2, "not valid JSON"),
        (3, "not a JSON object"),
        (4, "no messages and no question/prompt/instruction text"),
        (5, "the conversation must end with a non-empty user message"),
        (6, "messages[0] needs a role"),
        (7, "messages is a string that is neither a JSON nor a Python list"),
        (8, "duplicate id"),
    }


def test_a_missing_baseline_answer_skips_only_that_question(tmp_path: Path) -> None:
    column = "gpt-4-turbo-2024-04-09_response"
    records = [CODEARENA_LINE, {**CODEARENA_LINE, "id": "x", column: ""}]
    loaded = load_questions(_write(tmp_path / "q.jsonl", records), baseline_column=column)
    assert [q.id for q in loaded.questions] == [CODEARENA_LINE["id"]]
    assert loaded.skipped[0].reason == f"no baseline answer in column {column!r}"


def test_limit_and_a_missing_file(tmp_path: Path) -> None:
    assert len(load_questions(limit=3).questions) == 3
    with pytest.raises(FileNotFoundError, match="--questions"):
        load_questions(tmp_path / "nope.jsonl")
