"""The judge with the real 135M model, after real Docker execution, through to the export:
every judged answer has its ratings or a counted reason, a killed judge resumes without
rating a task twice, pairs come from execution and from the judge, the ratings config loads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfalign.curate.config import ExecuteConfig, ExportConfig, PairsConfig, SelectConfig
from selfalign.pipeline import run_named
from selfalign.sandbox import SandboxConfig

pytestmark = [pytest.mark.docker, pytest.mark.slow]

JUDGE_CONFIG = """\
[judge]
preferences = ["instruction_following", "readability"]
max_responses = 3
prefill = true
max_tokens = 120
batch_size = 2

[judge.model]
device = "cpu"
engine_batch_size = 8
"""


def test_real_judge_end_to_end(hand_run, sandbox_image, tmp_path: Path) -> None:
    run = hand_run.run
    sandbox = SandboxConfig(workers=2, timeout_s=3, image=sandbox_image)
    run_named(run, "execute", {"execute": ExecuteConfig(), "sandbox": sandbox})
    config = tmp_path / "judge.toml"
    config.write_text(JUDGE_CONFIG)
    args = ["judge", "--run", str(run.path), "--config", str(config)]

    # Kill the judge once its first batch is written, then resume it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "selfalign", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[2],
    )
    store = run.stage("judgments")
    deadline = time.monotonic() + 600
    try:
        while not store.shards():
            assert proc.poll() is None, "the judge ended before it could be killed"
            assert time.monotonic() < deadline, "the judge wrote no batch in time"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {r["id"]: r for r in store.read()}
    assert before and not store.is_complete()

    done = subprocess.run(
        [sys.executable, "-m", "selfalign", *args], capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = list(store.read())
    tasks = [r["task_id"] for r in records]
    assert len(tasks) == len(set(tasks))  # no task rated twice
    # What the killed run wrote stays as it was; the resumed run added only the rest.
    assert all(r == before[r["id"]] for r in records if r["id"] in before)
    assert len(records) > len(before)
    stats = store.load_stats()
    assert stats.runs == 2
    # Every task is judged or rejected with a reason (a task with nothing to judge).
    rejected_tasks = {r["id"] for r in store.read_rejected()}
    assert set(tasks) | rejected_tasks == {hand_run.task_id(n) for n in hand_run.tasks}

    for record in records:
        rejected = {(r["preference"], r["reason"]) for r in record["rejected"]}
        for entry in record["ratings"]:
            for preference in record["preferences"]:
                value = entry["ratings"].get(preference)
                # A rating from 1 to 5, or a rejected judgment of that preference with a reason.
                assert (value is not None and 1 <= value <= 5) or any(
                    p == preference and reason for p, reason in rejected
                ), (record["task_id"], entry, record["rejected"])
    for reason, count in stats.metrics.items():
        if reason.startswith("judgments_rejected_"):
            assert count >= 1

    run_named(run, "select", {"select": SelectConfig(pick="judge")})
    pairs = run_named(run, "pairs", {"pairs": PairsConfig(judge_min_margin=0.5)})
    sources = {p["preference_source"] for p in run.stage("pairs").read()}
    assert "execution" in sources or "both" in sources
    assert sources & {"judge", "both"}, (sources, pairs.metrics)
    run_named(run, "export", {"export": ExportConfig(plots=False)})

    from datasets import load_dataset

    cache = str(tmp_path / "hf-cache")
    ratings = load_dataset(str(run.path / "dataset"), "ratings", split="train", cache_dir=cache)
    examples = {e["task_id"] for e in run.stage("examples").read()}
    assert set(ratings["task_id"]) <= examples and len(ratings) >= 1
