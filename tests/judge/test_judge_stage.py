"""The judge stage in the pipeline, with a scripted judge (flow only: the real judge is in
test_judge_e2e.py): its records, resume, the `judge` pick rule, judge pairs, the ratings
config of the export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.curate.config import ExportConfig, PairsConfig, SelectConfig
from selfalign.judge.config import JudgeConfig
from selfalign.pipeline import run_named
from selfalign.records import Attempt, Task, Verdict, stable_id
from selfalign.stage import MissingInputError
from selfalign.store import RunDir, dumps_line

from .conftest import ScriptedJudge, fair_answer

# Per task: (status, QUALITY marker the scripted judge rates by). The answers are clones
# of one another, so the tests run selection without dedup.
ANSWERS = {
    # The judge's worst answer also passes: the judge pair differs from the execution pair.
    "t0": [("pass", 5), ("pass", 1), ("fail", 3)],
    # The judge's worst answer fails: judge and execution agree, one pair of source both.
    "t1": [("pass", 4), ("fail", 1)],
    # Every rating equal: no judge pair.
    "t2": [("pass", 3), ("fail", 3)],
    # No passing answer: not judged (tasks = with_pass), counted.
    "t3": [("fail", 2), ("fail", 4)],
}
JUDGED = {"t0", "t1", "t2"}


def _write(run: RunDir, stage: str, records: list) -> None:
    store = run.stage(stage)
    store.dir.mkdir(parents=True, exist_ok=True)
    (store.dir / "part-00000.jsonl").write_text("".join(dumps_line(r.to_dict()) for r in records))
    store.mark_success()


def _run(path: Path) -> RunDir:
    run = RunDir(path)
    tasks, attempts, verdicts = [], [], []
    for t, answers in ANSWERS.items():
        tasks.append(Task(id=t, parent_id="c", instruction=f"Write f{t}(x) returning x."))
        for i, (status, quality) in enumerate(answers):
            aid = stable_id("attempt", t, i)
            solution = f"def f{t}(x):\n    return x  # QUALITY={quality} variant {i}\n"
            tests = f"assert f{t}(1) == 1\n"
            attempts.append(
                Attempt(
                    id=aid,
                    parent_id=t,
                    task_id=t,
                    sample_index=i,
                    instruction=tasks[-1].instruction,
                    response=f"```python\n{solution}```\n\n```python\n{tests}```\n",
                    solution=solution,
                    tests=tests,
                )
            )
            verdicts.append(
                Verdict(id=f"v{aid}", parent_id=aid, attempt_id=aid, task_id=t, status=status)
            )
    _write(run, "tasks", tasks)
    _write(run, "attempts", attempts)
    _write(run, "verdicts", verdicts)
    return run


def _aid(task: str, index: int) -> str:
    return stable_id("attempt", task, index)


def test_judge_select_pairs_export(tmp_path: Path) -> None:
    run = _run(tmp_path / "run")
    configs = {"judge": JudgeConfig(preferences=["readability", "coding_style"], batch_size=2)}
    with pytest.raises(MissingInputError, match="selfalign judge --run"):
        run_named(run, "select", {"select": SelectConfig(pick="judge", dedup=False)})

    judge = ScriptedJudge(fair_answer)
    stats = run_named(run, "judge", configs, llm=judge)
    assert stats.written == 3 and stats.complete
    assert stats.dropped == {"no_passing_answer": 1}
    records = {r["task_id"]: r for r in run.stage("judgments").read()}
    assert set(records) == JUDGED
    assert all(r["parent_id"] == r["task_id"] for r in records.values())
    t0 = {e["attempt_id"]: e["mean_rating"] for e in records["t0"]["ratings"]}
    assert t0 == {_aid("t0", 0): 5.0, _aid("t0", 1): 1.0, _aid("t0", 2): 3.0}
    # Complete: nothing is rated twice.
    calls = len(judge.calls)
    assert run_named(run, "judge", configs, llm=judge).runs == 1 and len(judge.calls) == calls

    examples = run_named(run, "select", {"select": SelectConfig(pick="judge", dedup=False)})
    assert examples.written == 3
    picked = {e["task_id"]: e["attempt_id"] for e in run.stage("examples").read()}
    assert picked["t0"] == _aid("t0", 0) and picked["t1"] == _aid("t1", 0)

    pairs_stats = run_named(run, "pairs", {"pairs": PairsConfig(judge_min_margin=1.0)})
    pairs = {
        (p["chosen_attempt_id"], p["rejected_attempt_id"]): p for p in run.stage("pairs").read()
    }
    sources = {ids: p["preference_source"] for ids, p in pairs.items()}
    assert sources == {
        (_aid("t0", 0), _aid("t0", 2)): "execution",
        (_aid("t0", 0), _aid("t0", 1)): "judge",
        (_aid("t1", 0), _aid("t1", 1)): "both",
        (_aid("t2", 0), _aid("t2", 1)): "execution",
    }
    judge_side = pairs[(_aid("t0", 0), _aid("t0", 1))]
    assert judge_side["chosen_ratings"]["mean"] == 5.0
    assert judge_side["rejected_ratings"]["readability"] == 1.0
    assert judge_side["rejected_status"] == "pass"
    assert pairs_stats.metrics["source_both"] == 1

    # A threshold on a preference the judge did not rate keeps every (unrated) answer.
    strict = SelectConfig(min_instruction_following=2.0, dedup=False)
    assert run_named(run, "select", {"select": strict}, force=True).written == 3

    run_named(run, "select", {"select": SelectConfig(pick="judge", dedup=False)}, force=True)
    run_named(run, "pairs", {"pairs": PairsConfig()})
    run_named(run, "export", {"export": ExportConfig(plots=True)})
    dataset = run.path / "dataset"
    assert (dataset / "ratings.parquet").is_file()
    assert (dataset / "plots" / "ratings.png").is_file()
    from datasets import load_dataset

    cache = str(tmp_path / "hf-cache")
    ratings = load_dataset(str(dataset), "ratings", split="train", cache_dir=cache)
    assert sorted(ratings["task_id"]) == sorted(JUDGED)
    row = next(r for r in ratings if r["task_id"] == "t0")
    marks = [c["annotations"]["readability"]["rating"] for c in row["completions"]]
    assert marks == [5.0, 1.0, 3.0]
    assert row["completions"][0]["annotations"]["instruction_following"]["rating"] is None
    loaded_pairs = load_dataset(str(dataset), "pairs", split="train", cache_dir=cache)
    assert set(loaded_pairs["preference_source"]) == {"execution", "judge", "both"}
    card = (dataset / "README.md").read_text()
    summary = json.loads((run.path / "export" / "stats.json").read_text())["metrics"]
    agreement = summary["judge"]["agreement"]
    # t0: pass5 > fail3, pass1 < fail3; t1: pass4 > fail1; t2: tie.
    assert (agreement["agree"], agreement["disagree"], agreement["tie"]) == (2, 1, 1)
    assert "Judge and execution agree on 2 of 4" in card
    assert "| ratings | 3 |" in card


def test_min_instruction_following_drops_low_rated_answers(tmp_path: Path) -> None:
    run = _run(tmp_path / "run")
    cfg = {"judge": JudgeConfig(preferences=["instruction_following"])}
    run_named(run, "judge", cfg, llm=ScriptedJudge(fair_answer))
    select = SelectConfig(min_instruction_following=4.5, dedup=False)
    stats = run_named(run, "select", {"select": select})
    # Only t0's first answer (5) clears 4.5; t1 (4) and t2 (3) have no answer left.
    assert stats.written == 1
    assert stats.dropped == {"low_instruction_following": 2, "no_passing_attempt": 1}


def test_a_disabled_judge_judges_nothing(tmp_path: Path) -> None:
    run = _run(tmp_path / "run")
    judge = ScriptedJudge(fair_answer)
    stats = run_named(run, "judge", {"judge": JudgeConfig(enabled=False)}, llm=judge)
    assert stats.complete and stats.written == 0 and not judge.calls
