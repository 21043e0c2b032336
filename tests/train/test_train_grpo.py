"""A real GRPO run: the 135M model on CPU, rewards from real Docker, tasks from the fixture.

A first run crashes after its first step (a checkpoint on disk): its sandbox pool is
closed and its containers are gone. The second run resumes, finishes, saves a model
that reloads and generates; the held-out tasks are then evaluated with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from selfalign.sandbox import SandboxConfig, SandboxUnavailable
from selfalign.train import grpo
from selfalign.train.config import GRPOOptions
from selfalign.train.sandbox_session import SandboxSession

pytestmark = [pytest.mark.slow, pytest.mark.docker]

FIXTURE = Path(__file__).parents[1] / "fixtures" / "grpo" / "dataset"


class Crash(Exception):
    """Stands in for a crash of the training right after the first checkpoint."""


def _crash_after_first_save() -> Any:
    from transformers import TrainerCallback

    class CrashAfterSave(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            raise Crash(state.global_step)

    return CrashAfterSave()


def _containers(pool_id: str) -> list[str]:
    cp = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=selfalign.sandbox.pool={pool_id}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return cp.stdout.split()


def _gone(pool_id: str, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while _containers(pool_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    return not _containers(pool_id)


@pytest.fixture(scope="module")
def sandbox() -> SandboxConfig:
    from selfalign.sandbox.image import build_image, check_docker

    try:
        check_docker()
        image = build_image()
    except SandboxUnavailable as exc:
        if os.environ.get("SELFALIGN_REQUIRE_DOCKER") == "1":
            pytest.fail(f"SELFALIGN_REQUIRE_DOCKER=1 but Docker is unavailable: {exc}")
        pytest.skip(f"Docker sandbox unavailable: {exc}")
    return SandboxConfig(workers=2, timeout_s=5, image=image)


def test_grpo_steps_with_docker_rewards_resume_save_and_evaluate(
    sandbox: SandboxConfig, embedded_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfalign.llm.base import load_llm
    from selfalign.llm.config import ModelConfig
    from selfalign.train.task_eval import (
        TaskEvalConfig,
        evaluate_tasks,
        executability_of_results,
        load_tasks,
    )

    sessions: list[SandboxSession] = []

    class Recorded(SandboxSession):
        def __enter__(self) -> SandboxSession:
            sessions.append(self)
            return super().__enter__()

    monkeypatch.setattr(grpo, "SandboxSession", Recorded)
    out = tmp_path / "grpo"
    opts = GRPOOptions(
        data=str(FIXTURE),
        model=embedded_model,
        out=str(out),
        preset="demo",
        max_steps=2,
        num_generations=2,
        batch_size=2,
        effective_batch_size=2,
        max_completion_length=48,
        save_steps=1,
        logging_steps=1,
        optimizer="sgd",  # no optimizer state: checkpoints are quick to write
        heldout_fraction=0.2,
    )

    with pytest.raises(Crash):
        grpo.train_grpo(opts, sandbox, callbacks=[_crash_after_first_save()])
    assert (out / "checkpoint-1").is_dir() and not (out / "model.safetensors").exists()
    crashed = sessions[0]
    assert crashed.pool is None and crashed.opened == 1
    assert _gone(crashed.pool_ids[0]), "the crashed run left sandbox containers behind"

    result = grpo.train_grpo(opts, sandbox)
    assert result.resumed_from is not None and result.global_step == 2
    session = sessions[1]
    assert session.opened == 1 and session.pool is None and _gone(session.pool_ids[0])

    m = result.metrics
    # 10 tasks: the weak and the broken one are screened out, 2 of the 8 left held out.
    held = [json.loads(line) for line in (out / "heldout.jsonl").read_text().splitlines()]
    assert m["tasks_screened_out"] == {"weak_tests:null_passes": 1, "reference_fails": 1}
    assert result.rows_skipped == m["tasks_screened_out"]
    assert m["tasks_held_out"] == len(held) == 2 and m["tasks_trained_on"] == 6
    assert not {"task-weak-first_char", "task-broken-double"} & {t["task_id"] for t in held}
    # The resumed run rewarded one step of 2 completions; the log has both runs' rounds.
    assert m["execution"]["rounds"] == 1 and m["execution"]["completions"] == 2
    rounds = [json.loads(line) for line in (out / "rewards.jsonl").read_text().splitlines()]
    assert len(rounds) == 2 and all(len(r["rewards"]) == 2 for r in rounds)
    assert [r["step"] for r in rounds] == [0, 1]  # the crashed run's step, then the resumed
    assert [r["rank"] for r in rounds] == [0, 0]
    assert all(r in (0.0, 1.0) for line in rounds for r in line["rewards"])
    assert all(0.0 <= line["sandbox_time_share"] <= 1.0 for line in rounds)
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    logged = state["log_history"][0]
    for key in ("rewards/execution/mean", "rewards/format/mean", "execution/pass_rate"):
        assert key in logged, sorted(logged)
    card = (out / "README.md").read_text()
    assert "GRPO" in card and "execution.pass_rate" in card and "tasks_held_out" in card

    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        held[0]["prompt"], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]

    llm = load_llm(ModelConfig(model=str(out), device="cpu"))
    report = evaluate_tasks(
        llm,
        load_tasks(out / "heldout.jsonl"),
        TaskEvalConfig(max_new_tokens=64),
        sandbox,
        model_name=str(out),
        out=tmp_path / "eval",
    )
    summary = report.summary
    assert summary["problems"] == 2 and sum(summary["statuses"].values()) == 2
    assert 0.0 <= summary["pass_at_k"]["pass@1"] <= summary["executability"] <= 1.0
    assert executability_of_results(tmp_path / "eval") == summary["executability"]
