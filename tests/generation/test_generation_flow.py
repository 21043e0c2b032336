"""Stage flow with a fake LLM: records, rejections, resume, ids (real model: *_real.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from selfalign.generation.config import ConceptsConfig, RespondConfig, TasksConfig
from selfalign.llm.base import Generation
from selfalign.llm.config import ModelConfig
from selfalign.pipeline import run_named
from selfalign.records import Concepts, Task, stable_id
from selfalign.stage import MissingInputError
from selfalign.store import RunDir

MODEL = ModelConfig(device="cpu")
GOOD_ANSWER = (
    "Add them.\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
    "### Tests\n```python\nassert add(1, 2) == 3\n```"
)


def concepts_answer(prompt, k):
    text = prompt[-1]["content"] if isinstance(prompt, list) else prompt
    return "" if "is_even" in text else "addition, return values, functions"


def ids_of(run: RunDir, stage: str) -> list[str]:
    done = [r["parent_id"] for r in run.stage(stage).read()]
    done += [r["id"] for r in run.stage(stage).read_rejected()]
    return done


def test_concepts_writes_records_and_rejects_empty_lists(seeded_run, fake_llm_factory, prompts_dir):
    llm = fake_llm_factory(concepts_answer)
    cfg = ConceptsConfig(prompts_dir=prompts_dir, num_fewshot=2, batch_size=2)
    stats = run_named(seeded_run, "concepts", {"model": MODEL, "concepts": cfg}, llm=llm)
    rows = list(seeded_run.stage("concepts").read())
    assert stats.complete and stats.written == 4 and stats.dropped == {"no_concepts": 1}
    assert stats.metrics["generated_tokens"] == 25
    record = Concepts.from_dict(rows[0])
    assert record.concepts == ["addition", "return values", "functions"]
    assert record.seed_id == record.parent_id and record.seed_code.startswith("def ")
    # Few-shots go in as prior chat turns: system, 2 x (user, assistant), user.
    assert [m["role"] for m in llm.calls[0][0]] == ["system"] + ["user", "assistant"] * 2 + ["user"]
    assert [len(c) for c in llm.calls] == [2, 2, 1]  # one engine call per batch


def test_concepts_resume_after_kill_has_no_duplicates_and_no_losses(
    seeded_run, fake_llm_factory, prompts_dir
):
    cfg = ConceptsConfig(prompts_dir=prompts_dir, num_fewshot=1, batch_size=2)
    killed = fake_llm_factory(concepts_answer, fail_on_call=2)
    with pytest.raises(KeyboardInterrupt):
        run_named(seeded_run, "concepts", {"model": MODEL, "concepts": cfg}, llm=killed)
    assert not seeded_run.stage("concepts").is_complete()
    assert len(ids_of(seeded_run, "concepts")) == 2  # the first batch survived
    resumed = fake_llm_factory(concepts_answer)
    stats = run_named(seeded_run, "concepts", {"model": MODEL, "concepts": cfg}, llm=resumed)
    assert sum(len(c) for c in resumed.calls) == 3  # only what was not done
    done = Counter(ids_of(seeded_run, "concepts"))
    seeds = [r["id"] for r in seeded_run.stage("seeds").read()]
    assert sorted(done) == sorted(seeds) and set(done.values()) == {1}
    assert stats.complete and stats.read == 5 and stats.runs == 2


def test_ids_and_prompts_are_reproducible(seeded_run, fake_llm_factory, prompts_dir):
    cfg = ConceptsConfig(prompts_dir=prompts_dir, num_fewshot=2, batch_size=5)
    first, second = fake_llm_factory(concepts_answer), fake_llm_factory(concepts_answer)
    run_named(seeded_run, "concepts", {"model": MODEL, "concepts": cfg}, llm=first)
    ids = sorted(r["id"] for r in seeded_run.stage("concepts").read())
    run_named(seeded_run, "concepts", {"model": MODEL, "concepts": cfg}, llm=second, force=True)
    assert ids == sorted(r["id"] for r in seeded_run.stage("concepts").read())
    assert first.calls == second.calls
    # The few-shot choice varies between records (it is seeded per record).
    shots = {str(p[1:-1]) for p in first.calls[0]}
    assert len(shots) > 1


def test_stage_refuses_to_run_without_its_input(run_dir, prompts_dir):
    with pytest.raises(MissingInputError, match="selfalign seeds --run"):
        run_named(run_dir, "concepts", {"concepts": ConceptsConfig(prompts_dir=prompts_dir)})
    with pytest.raises(MissingInputError, match="selfalign tasks --run"):
        run_named(run_dir, "respond", {"respond": RespondConfig(prompts_dir=prompts_dir)})


def concepts_rows(n: int) -> list[dict]:
    return [
        Concepts(
            id=stable_id("concepts", i),
            parent_id=f"seed-{i}",
            seed_id=f"seed-{i}",
            seed_code="def f(): pass",
            concepts=["loops", "lists"],
        ).to_dict()
        for i in range(n)
    ]


def test_tasks_sample_category_and_keep_fields(
    run_dir, fake_llm_factory, prompts_dir, stage_writer
):
    stage_writer(run_dir, "concepts", concepts_rows(6) + [{"id": "broken"}])
    answers = iter(["Write a class `Bag` that counts items and returns counts."] * 5 + ["ok"])
    llm = fake_llm_factory(lambda p, k: next(answers))
    cfg = TasksConfig(
        prompts_dir=prompts_dir,
        num_fewshot=2,
        batch_size=4,
        category_weights={"class": 1.0},
        difficulty_weights={"hard": 1.0},
    )
    stats = run_named(run_dir, "tasks", {"model": MODEL, "tasks": cfg}, llm=llm)
    tasks = [Task.from_dict(r) for r in run_dir.stage("tasks").read()]
    assert len(tasks) == 5 and stats.dropped == {"short_instruction": 1, "malformed_input": 1}
    assert {(t.category, t.difficulty, t.language) for t in tasks} == {("class", "hard", "python")}
    assert all(
        t.concepts == ["loops", "lists"] and t.instruction.startswith("Write") for t in tasks
    )
    # Same-category examples are shown first.
    assert "Category: class" in llm.calls[0][0][1]["content"]


def test_tasks_category_weights_are_followed(run_dir):
    from selfalign.generation.tasks import sample_spec

    cfg = TasksConfig(category_weights={"function": 3.0, "program": 1.0, "class": 0.0})
    counts = Counter(sample_spec(cfg, f"c{i}")[0] for i in range(400))
    assert counts["class"] == 0 and 240 < counts["function"] < 360
    assert sample_spec(cfg, "c1") == sample_spec(cfg, "c1")


def test_respond_keeps_malformed_answers_with_reasons(
    run_dir, fake_llm_factory, prompts_dir, stage_writer
):
    tasks = [
        Task(
            id=f"task-{i}", parent_id=f"c{i}", seed_id=f"s{i}", instruction=f"Write add {i}."
        ).to_dict()
        for i in range(3)
    ]
    stage_writer(run_dir, "tasks", tasks)
    llm = fake_llm_factory(lambda p, k: GOOD_ANSWER if k == 0 else "no code here")
    cfg = RespondConfig(prompts_dir=prompts_dir, num_samples=3, batch_size=2)
    stats = run_named(run_dir, "respond", {"model": MODEL, "respond": cfg}, llm=llm)
    attempts = list(run_dir.stage("attempts").read())
    assert stats.written == 9 and stats.metrics["parse_ok"] == 3
    assert stats.metrics["parse_error_no_code_block"] == 6
    by_task = Counter(a["task_id"] for a in attempts)
    assert by_task == {"task-0": 3, "task-1": 3, "task-2": 3}
    ok = [a for a in attempts if a["sample_index"] == 0]
    assert all(a["parse_error"] is None and a["tests"] == "assert add(1, 2) == 3" for a in ok)
    assert all(a["solution"].startswith("def add") for a in ok)
    assert len({a["id"] for a in attempts}) == 9


def test_completion_mode_renders_text_with_stop_markers(seeded_run, fake_llm_factory, prompts_dir):
    seen = []

    class Spy:
        def generate(self, prompts, params):
            seen.append(params)
            return [[Generation("loops, sets")] for _ in prompts]

    model = ModelConfig(device="cpu", mode="completion")
    cfg = ConceptsConfig(prompts_dir=prompts_dir, num_fewshot=1, limit=2)
    stats = run_named(seeded_run, "concepts", {"model": model, "concepts": cfg}, llm=Spy())
    assert stats.written == 2 and "\n### Snippet" in seen[0].stop
