"""The three stages with the real 135M model on CPU: record structure and kill/resume."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from selfalign.generation.config import ConceptsConfig, RespondConfig, TasksConfig
from selfalign.generation.parse import PARSE_ERRORS
from selfalign.llm.config import ModelConfig
from selfalign.pipeline import run_named
from selfalign.records import Attempt, Concepts, Task

pytestmark = pytest.mark.slow

MODEL = ModelConfig(device="cpu")


def test_concepts_then_tasks_with_the_real_model(seeded_run, real_llm, prompts_dir):
    cfg = ConceptsConfig(prompts_dir=prompts_dir, num_fewshot=1, max_tokens=24, limit=3)
    stats = run_named(seeded_run, "concepts", {"model": MODEL, "concepts": cfg}, llm=real_llm)
    assert stats.complete and stats.read == 3
    assert stats.written + stats.dropped.get("no_concepts", 0) == 3
    assert stats.metrics["generated_tokens"] > 0
    concepts = [Concepts.from_dict(r) for r in seeded_run.stage("concepts").read()]
    assert concepts, "the model listed no usable concepts for any seed"
    for record in concepts:
        assert 1 <= len(record.concepts) <= cfg.max_concepts
        assert all(c and len(c) <= 80 for c in record.concepts)
        assert record.raw_output and record.seed_code

    tcfg = TasksConfig(prompts_dir=prompts_dir, num_fewshot=1, max_tokens=48)
    tstats = run_named(seeded_run, "tasks", {"model": MODEL, "tasks": tcfg}, llm=real_llm)
    assert tstats.complete and tstats.read == len(concepts)
    tasks = [Task.from_dict(r) for r in seeded_run.stage("tasks").read()]
    assert len(tasks) + sum(tstats.dropped.values()) == len(concepts)
    for task in tasks:
        assert task.category in ("function", "class", "program")
        assert task.difficulty in ("easy", "medium", "hard") and task.language == "python"
        assert len(task.instruction) >= tcfg.min_instruction_chars
        assert task.parent_id in {c.id for c in concepts}


class KilledAfter:
    """Delegates to the real model, then dies like a Ctrl-C on the given call."""

    def __init__(self, llm: Any, fail_on_call: int) -> None:
        self.llm, self.fail_on_call, self.calls = llm, fail_on_call, 0

    def generate(self, prompts, params):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt
        return self.llm.generate(prompts, params)


def test_respond_kill_and_resume_loses_and_duplicates_nothing(
    run_dir, real_llm, prompts_dir, stage_writer
):
    instructions = [
        "Write a function `double(x: int) -> int` that returns twice x.",
        "Write a function `last(items: list)` that returns the last item or None.",
        "Write a function `shout(s: str) -> str` that upper-cases s and adds '!'.",
    ]
    tasks = [
        Task(id=f"task-{i}", parent_id=f"c{i}", seed_id=f"s{i}", instruction=text).to_dict()
        for i, text in enumerate(instructions)
    ]
    stage_writer(run_dir, "tasks", tasks)
    # No few-shot example here: it would only lengthen every prompt (CPU time in CI);
    # the few-shot path is exercised with the real model in the test above.
    cfg = RespondConfig(
        prompts_dir=prompts_dir, num_fewshot=0, num_samples=2, max_tokens=32, batch_size=1
    )
    killed = KilledAfter(real_llm, fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        run_named(run_dir, "respond", {"model": MODEL, "respond": cfg}, llm=killed)
    first = [r["id"] for r in run_dir.stage("attempts").read()]
    assert len(first) == 2  # one task's two samples were committed before the kill

    resumed = KilledAfter(real_llm, fail_on_call=0)
    stats = run_named(run_dir, "respond", {"model": MODEL, "respond": cfg}, llm=resumed)
    assert resumed.calls == 2  # only the two tasks not done yet
    attempts = [Attempt.from_dict(r) for r in run_dir.stage("attempts").read()]
    assert len({a.id for a in attempts}) == len(attempts) == 6
    assert set(first) <= {a.id for a in attempts}
    assert Counter(a.task_id for a in attempts) == {"task-0": 2, "task-1": 2, "task-2": 2}
    for a in attempts:
        assert a.sample_index in (0, 1) and a.raw_output and a.finish_reason in ("stop", "length")
        assert a.parse_error is None or a.parse_error in PARSE_ERRORS
        if a.finish_reason == "length":
            assert a.parse_error == "truncated"
    counted = sum(v for k, v in stats.metrics.items() if k.startswith(("parse_", "parse_error_")))
    assert counted == 6 and stats.complete and stats.runs == 2
