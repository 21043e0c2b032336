"""The corpus through the pipeline itself: real Docker, execute -> select -> export keeps
none of the cheats and every honest answer (the acceptance of issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfalign.curate.config import ExportConfig, PairsConfig, SelectConfig
from selfalign.pipeline import run_named
from selfalign.records import Attempt, Task, stable_id
from selfalign.sandbox import SandboxConfig
from selfalign.store import RunDir, dumps_line

from .conftest import Case

pytestmark = pytest.mark.docker


def _write(run: RunDir, stage: str, rows: list) -> None:
    store = run.stage(stage)
    store.dir.mkdir(parents=True, exist_ok=True)
    (store.dir / "part-00000.jsonl").write_text("".join(dumps_line(r.to_dict()) for r in rows))
    store.mark_success()


def test_execute_select_export_keeps_no_cheat_and_every_honest_answer(
    corpus: list[Case], sandbox_image: str, tmp_path: Path
) -> None:
    run = RunDir(tmp_path / "run")
    tasks, attempts = [], []
    for case in corpus:
        task = Task(id=stable_id("task", case.id), parent_id="c", instruction=f"Task {case.id}.")
        tasks.append(task)
        attempts.append(
            Attempt(
                id=stable_id("attempt", case.id),
                parent_id=task.id,
                task_id=task.id,
                instruction=task.instruction,
                response=f"```python\n{case.solution}```\n\n```python\n{case.tests}```\n",
                solution=case.solution,
                tests=case.tests,
            )
        )
    _write(run, "tasks", tasks)
    _write(run, "attempts", attempts)
    sandbox = SandboxConfig(workers=2, timeout_s=10, image=sandbox_image)
    executed = run_named(run, "execute", {"sandbox": sandbox})
    # Dedup and decontamination are other rules: here only "does the pass prove anything".
    select = SelectConfig(dedup=False, decontaminate=False)
    run_named(run, "select", {"select": select})
    run_named(run, "pairs", {"select": select, "pairs": PairsConfig(sources=["execution"])})
    run_named(run, "export", {"export": ExportConfig(plots=False)})

    by_task = {stable_id("task", c.id): c for c in corpus}
    kept = {by_task[e["task_id"]].id for e in run.stage("examples").read()}
    honest = {c.id for c in corpus if c.kind == "honest"}
    cheats = {c.id for c in corpus if c.kind == "cheats"}
    assert kept & cheats == set(), sorted(kept & cheats)
    assert kept == honest, sorted(honest - kept)
    exported = (run.path / "dataset" / "sft.jsonl").read_text().count("\n")
    assert exported == len(honest)
    # Every dropped cheat has a reason saying why its pass proved nothing (or why it failed).
    reasons = {by_task[r["id"]].id: r["reason"] for r in run.stage("examples").read_rejected()}
    assert set(reasons) == cheats
    assert set(reasons.values()) <= {
        "gamed_tests", "vacuous_tests", "weak_tests", "no_passing_attempt"
    }
    strength = executed.metrics["strength"]
    assert strength["strong"] == len(honest) and strength["checked"] >= len(honest)
    # The card shows the strength funnel: passed -> strong -> kept, and why tests were weak.
    card = (run.path / "dataset" / "README.md").read_text()
    assert f"| passed their own tests | {strength['passed']} |" in card
    assert f"| strong tests | {len(honest)} |" in card
    assert f"| kept in the data set (one per task) | {len(honest)} |" in card
    for reason, count in strength["weak_by_reason"].items():
        assert f"| {reason} | {count} |" in card
