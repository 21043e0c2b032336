"""TRL accepts both exported configs as its CLIs load them: `trl sft --dataset_name RUN/dataset`
and `trl dpo --dataset_name RUN/dataset --dataset_config pairs` call
`load_dataset(name, name=config)["train"]`; an SFTTrainer and a DPOTrainer train one step."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfalign.curate.config import ExportConfig, PairsConfig, SelectConfig
from selfalign.pipeline import run_named
from selfalign.records import Attempt, Task, Verdict, stable_id
from selfalign.store import RunDir, dumps_line

pytestmark = pytest.mark.slow


def _write(run: RunDir, stage: str, records: list) -> None:
    store = run.stage(stage)
    store.dir.mkdir(parents=True, exist_ok=True)
    (store.dir / "part-00000.jsonl").write_text("".join(dumps_line(r.to_dict()) for r in records))
    store.mark_success()


def _exported(run: RunDir) -> Path:
    """A run of four tasks with a passing and a failing answer each, selected and exported.

    The verdicts are written by hand: selection and export never run code, and the
    sandbox is covered by the end-to-end test.
    """
    tasks, attempts, verdicts = [], [], []
    # Four different programs: near-dedup compares code with identifiers renamed, so
    # `x + 1` and `x + 2` would be one program.
    bodies = [("x + 1", 2), ("x * 3", 3), ("abs(x) - 7", -6), ("len(str(x))", 1)]
    for t, (right, expected) in enumerate(bodies):
        task = Task(
            id=f"task{t}",
            parent_id="c",
            instruction=f"Write f{t}(x) returning {right}.",
            category="function",
            difficulty="easy",
        )
        tasks.append(task)
        for s, (status, body) in enumerate((("pass", right), ("fail", "None"))):
            solution = f"def f{t}(x):\n    return {body}\n"
            tests = f"assert f{t}(1) == {expected}\n"
            aid = stable_id("attempt", t, s)
            attempts.append(
                Attempt(
                    id=aid,
                    parent_id=task.id,
                    task_id=task.id,
                    sample_index=s,
                    instruction=task.instruction,
                    solution=solution,
                    tests=tests,
                    response=f"```python\n{solution}```\n\n```python\n{tests}```\n",
                )
            )
            verdicts.append(
                Verdict(
                    id=f"v-{aid}", parent_id=aid, attempt_id=aid, task_id=task.id, status=status
                )
            )
    _write(run, "tasks", tasks)
    _write(run, "attempts", attempts)
    _write(run, "verdicts", verdicts)
    run_named(run, "select", {"select": SelectConfig()})
    run_named(run, "pairs", {"pairs": PairsConfig(sources=["execution"])})
    run_named(run, "export", {"export": ExportConfig(plots=False)})
    return run.path / "dataset"


def test_sft_and_dpo_trainers_accept_the_export(run_dir: RunDir, tmp_path: Path) -> None:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from selfalign.llm.embedded import resolve_model

    folder = str(_exported(run_dir))
    cache = str(tmp_path / "hf-cache")
    # What trl's CLI does with --dataset_name (and --dataset_config); sft is the default.
    data = {
        "sft": load_dataset(folder, name=None, cache_dir=cache)["train"],
        "pairs": load_dataset(folder, name="pairs", cache_dir=cache)["train"],
    }
    assert data["sft"].num_rows == 4 and data["pairs"].num_rows == 4
    assert "messages" in data["sft"].column_names
    assert {"prompt", "chosen", "rejected"} <= set(data["pairs"].column_names)
    model_path = resolve_model("embedded")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    # One example per step, short sequences, no checkpointing: the test is about
    # the data formats, so the step only has to run.
    common = dict(
        max_steps=1,
        per_device_train_batch_size=1,
        max_length=128,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        logging_steps=1,
    )

    sft = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_path),
        args=SFTConfig(output_dir=str(tmp_path / "sft"), **common),
        train_dataset=data["sft"],
        processing_class=tokenizer,
    )
    assert sft.train().global_step == 1

    dpo = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_path),
        args=DPOConfig(output_dir=str(tmp_path / "dpo"), **common),
        train_dataset=data["pairs"],
        processing_class=tokenizer,
    )
    assert dpo.train().global_step == 1
