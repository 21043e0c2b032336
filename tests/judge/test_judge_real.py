"""The judge with the real embedded 135M model on CPU, end to end on two small tasks.

The 135M judge is weak: many of its judgments are unreadable. What this test shows is
that the flow holds with a real model's real output: every judged answer gets a
rating on every preference, or the preference's judgment is rejected with a counted
reason; nothing is guessed and nothing disappears.
"""

from __future__ import annotations

import pytest

from selfalign.judge.config import JudgeConfig
from selfalign.judge.parse import REASONS
from selfalign.judge.prompt import JudgePrompts
from selfalign.judge.rate import JudgeTask, judge_batch
from selfalign.judge.rubrics import PREFERENCES

from .conftest import load_tasks

pytestmark = pytest.mark.slow

MODEL = "transformers:embedded:smollm2-135m-instruct"


def _small_tasks() -> list[JudgeTask]:
    palindrome, _, wordcount, _ = load_tasks()
    return [
        JudgeTask(palindrome.task_id, palindrome.instruction, palindrome.candidates[:2]),
        wordcount,
    ]


def test_real_judge_rates_or_rejects_every_answer(real_llm):
    cfg = JudgeConfig(max_tokens=160)
    tasks = _small_tasks()
    batch = judge_batch(real_llm, tasks, cfg, JudgePrompts.load("", cfg.preferences), MODEL)
    assert batch.rejections == []
    assert [r.task_id for r in batch.records] == [t.task_id for t in tasks]
    calls = len(tasks) * len(PREFERENCES)
    assert batch.metrics["judge_calls"] == calls
    rejected = sum(v for k, v in batch.metrics.items() if k.startswith("judgments_rejected_"))
    assert batch.metrics.get("judgments_ok", 0) + rejected == calls
    assert batch.metrics["judge_completion_tokens"] > 0
    for task, record in zip(tasks, batch.records, strict=True):
        assert record.parent_id == task.task_id
        assert record.attempt_ids == [c.attempt_id for c in task.candidates]
        rejected_prefs = {r["preference"]: r for r in record.rejected}
        for r in record.rejected:
            assert r["reason"] in REASONS and r["detail"]
        for entry in record.ratings:
            for preference in PREFERENCES:
                value = entry["ratings"][preference]
                if value is None:
                    assert preference in rejected_prefs, (entry["attempt_id"], preference)
                else:
                    assert 1 <= value <= 5
                    assert preference not in rejected_prefs
        for call in record.calls:
            assert call["raw_output"], "the model's output is kept for inspection"
            assert sorted(call["order"]) == sorted(record.attempt_ids)
            if call["reason"]:
                assert call["retried"], "an unreadable judgment is retried before rejection"
