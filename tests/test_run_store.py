"""The run store and the generic stage runner, exercised for real: kills, resumes, corruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from selfalign.stage import BatchResult, Section, Stage, StageContext, StageInput
from selfalign.stage_runner import run_stage
from selfalign.store import CORRUPT_LINE, DUPLICATE_ID, Rejection, RunDir, read_jsonl

# A toy stage: squares numbers, rejects multiples of 7. Kept as source text so the
# very same stage runs in this process and in a child process that we SIGKILL.
TOY_STAGE = '''
import time
from dataclasses import dataclass, field
from selfalign.records import stable_id
from selfalign.stage import BatchResult, Section, Stage, StageContext, StageInput
from selfalign.stage_runner import run_stage
from selfalign.store import Rejection, RunDir

@dataclass
class ToyConfig:
    """Options of the toy stage."""
    n: int = field(default=60, metadata={"help": "How many numbers to square."})
    batch_size: int = field(default=5, metadata={"help": "Numbers per batch."})
    delay: float = field(default=0.0, metadata={"help": "Seconds each batch takes."})

CALLS = {"batches": 0, "fail_on_batch": None}

def toy_inputs(n):
    return [{"id": f"n{i:04d}", "value": i} for i in range(n)]

def read(ctx):
    cfg = ctx.config("toy")
    return StageInput(items=toy_inputs(cfg.n), item_id=lambda r: r["id"], total=cfg.n)

def processor(ctx):
    delay = ctx.config("toy").delay
    def process(batch):
        CALLS["batches"] += 1
        if CALLS["fail_on_batch"] is not None and CALLS["batches"] == CALLS["fail_on_batch"]:
            raise RuntimeError("boom inside a batch")
        time.sleep(delay)
        outputs, rejections = [], []
        for item in batch:
            if item["value"] % 7 == 0:
                rejections.append(Rejection(id=item["id"], reason="multiple_of_7", record=item))
            else:
                outputs.append({"id": stable_id("sq", item["id"]), "parent_id": item["id"],
                                "square": item["value"] ** 2})
        return BatchResult(outputs=outputs, rejections=rejections,
                           metrics={"generated_tokens": float(len(batch))})
    return process

TOY = Stage(name="toy", command="toy", summary="square numbers, drop multiples of 7",
            section=Section("toy", ToyConfig), inputs=(), record=None, read=read,
            processor=processor, units=("numbers", "squares"), in_generate=False)

def run_toy(path, n, batch_size=5, delay=0.0, fail_on_batch=None, force=False):
    CALLS.update(batches=0, fail_on_batch=fail_on_batch)
    ctx = StageContext(RunDir(path), {"toy": ToyConfig(n, batch_size, delay)}, force=force,
                       pipeline=[TOY])
    stats = run_stage(TOY, ctx)
    return stats, dict(CALLS)
'''

toy: dict[str, Any] = {}
exec(compile(TOY_STAGE, "toy_stage", "exec"), toy)
run_toy = toy["run_toy"]


def run_process(
    path: Path, inputs: list[dict[str, Any]], process: Any, batch_size: int
) -> Any:
    """Run a one-off stage whose per-batch process is ``process``."""
    stage = Stage(
        name="toy",
        command="toy",
        summary="a one-off stage",
        section=Section("toy", toy["ToyConfig"]),
        inputs=(),
        record=None,
        read=lambda ctx: StageInput(items=inputs, item_id=lambda r: r["id"]),
        processor=lambda ctx: process,
    )
    config = toy["ToyConfig"](batch_size=batch_size)
    return run_stage(stage, StageContext(RunDir(path), {"toy": config}, pipeline=[stage]))

N = 60


def outputs(path: Path) -> list[dict[str, Any]]:
    return sorted(RunDir(path).stage("toy").read(), key=lambda r: r["id"])


def rejected(path: Path) -> list[dict[str, Any]]:
    return sorted(RunDir(path).stage("toy").read_rejected(), key=lambda r: r["id"])


@pytest.fixture
def reference(tmp_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The output of an uninterrupted run."""
    path = tmp_path / "reference"
    stats, _ = run_toy(path, N)
    assert stats.complete
    return outputs(path), rejected(path)


def test_uninterrupted_run_writes_contract_files(tmp_path: Path) -> None:
    path = tmp_path / "run"
    stats, _ = run_toy(path, N)
    stage_dir = path / "toy"
    assert (stage_dir / "_SUCCESS").is_file()
    assert sorted(p.name for p in stage_dir.glob("*.jsonl")) == ["part-00000.jsonl"]
    saved = json.loads((stage_dir / "stats.json").read_text())
    multiples = len([i for i in range(N) if i % 7 == 0])
    assert saved["read"] == N
    assert saved["written"] == N - multiples
    assert saved["dropped"] == {"multiple_of_7": multiples}
    assert saved["complete"] is True
    assert saved["metrics"]["generated_tokens"] == N
    assert stats.written == N - multiples
    assert len(rejected(path)) == multiples
    assert all(r["reason"] == "multiple_of_7" and r["stage"] == "toy" for r in rejected(path))


def test_ids_are_stable_across_runs(tmp_path: Path, reference: Any) -> None:
    run_toy(tmp_path / "again", N)
    assert outputs(tmp_path / "again") == reference[0]


def test_exception_inside_a_batch_then_resume(tmp_path: Path, reference: Any) -> None:
    path = tmp_path / "run"
    with pytest.raises(RuntimeError, match="boom"):
        run_toy(path, N, fail_on_batch=4)
    store = RunDir(path).stage("toy")
    assert not store.is_complete()
    partial = outputs(path)
    assert 0 < len(partial) < len(reference[0])
    assert json.loads(store.stats_path.read_text())["complete"] is False

    stats, calls = run_toy(path, N)
    assert stats.complete
    # Only the batches not committed before the failure were processed again.
    assert calls["batches"] == N // 5 - 3
    assert outputs(path) == reference[0]
    assert rejected(path) == reference[1]
    assert stats.read == N
    assert stats.runs == 2


def test_sigkill_of_a_child_running_the_stage_then_resume(tmp_path: Path, reference: Any) -> None:
    path = tmp_path / "run"
    code = TOY_STAGE + f"\nrun_toy({str(path)!r}, {N}, batch_size=5, delay=0.15)\n"
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ})
    stage_dir = path / "toy"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(list(stage_dir.glob("part-b*.jsonl"))) >= 3:
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    store = RunDir(path).stage("toy")
    assert not store.is_complete()
    done_before = len(outputs(path))
    assert 0 < done_before < len(reference[0])

    stats, calls = run_toy(path, N)
    assert stats.complete
    assert outputs(path) == reference[0]
    assert rejected(path) == reference[1]
    ids = [r["id"] for r in store.read()]
    assert len(ids) == len(set(ids))
    # Every line on disk holds a distinct id: nothing was written twice.
    on_disk = [r["id"] for shard in store.shards() for r in read_jsonl(shard)]
    assert sorted(on_disk) == sorted(ids)
    assert calls["batches"] < N // 5


def test_corrupt_trailing_line_is_dropped_and_counted(tmp_path: Path, reference: Any) -> None:
    path = tmp_path / "run"
    with pytest.raises(RuntimeError):
        run_toy(path, N, fail_on_batch=3)
    store = RunDir(path).stage("toy")
    shard = store.shards()[-1]
    good_lines = shard.read_text().splitlines()
    # Simulate a crash in the middle of writing the last record of the shard.
    shard.write_text("\n".join(good_lines[:-1]) + "\n" + good_lines[-1][:25])
    lost = json.loads(good_lines[-1])["id"]

    corrupt: list[Any] = []
    read_back = [r["id"] for r in read_jsonl(shard, corrupt)]
    assert lost not in read_back
    assert len(corrupt) == 1 and corrupt[0].error == "truncated last line"

    stats, _ = run_toy(path, N)
    assert stats.dropped[CORRUPT_LINE] == 1
    corrupt_rows = [r for r in store.read_rejected() if r["reason"] == CORRUPT_LINE]
    assert len(corrupt_rows) == 1 and corrupt_rows[0]["record"]["text"].startswith(
        good_lines[-1][:25]
    )
    # The lost record was regenerated: the output equals the uninterrupted run.
    assert outputs(path) == reference[0]


def test_garbage_line_in_the_middle_is_counted(tmp_path: Path) -> None:
    shard = tmp_path / "x.jsonl"
    shard.write_text('{"id": "a"}\nnot json\n[1, 2]\n{"id": "b"}\n')
    corrupt: list[Any] = []
    assert [r["id"] for r in read_jsonl(shard, corrupt)] == ["a", "b"]
    assert [c.line_number for c in corrupt] == [2, 3]


def test_complete_stage_is_skipped_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "run"
    run_toy(path, N)
    stats, calls = run_toy(path, N)
    assert stats.complete and calls["batches"] == 0
    stats, calls = run_toy(path, N, force=True)
    assert calls["batches"] == N // 5
    assert stats.runs == 1
    assert stats.read == N


def test_keyboard_interrupt_drops_the_batch_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "run"
    seen: list[int] = []

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        seen.append(len(batch))
        if len(seen) == 2:
            raise KeyboardInterrupt
        return BatchResult(outputs=[{"id": "o" + r["id"], "parent_id": r["id"]} for r in batch])

    inputs = [{"id": f"i{i}"} for i in range(10)]
    with pytest.raises(KeyboardInterrupt):
        run_process(path, inputs, process, batch_size=3)
    store = RunDir(path).stage("toy")
    assert [r["parent_id"] for r in store.read()] == ["i0", "i1", "i2"]
    assert not list(store.dir.glob(".*.tmp"))
    assert json.loads(store.stats_path.read_text())["read"] == 3


def test_duplicate_output_ids_are_rejected_not_written_twice(tmp_path: Path) -> None:
    def process(batch: list[dict[str, Any]]) -> BatchResult:
        return BatchResult(outputs=[{"id": "same", "parent_id": r["id"]} for r in batch])

    stats = run_process(tmp_path, [{"id": "a"}, {"id": "b"}], process, batch_size=1)
    assert stats.written == 1
    assert stats.dropped == {DUPLICATE_ID: 1}


def test_rejection_of_every_input_still_completes(tmp_path: Path) -> None:
    def process(batch: list[dict[str, Any]]) -> BatchResult:
        return BatchResult(rejections=[Rejection(id=r["id"], reason="bad") for r in batch])

    stats = run_process(tmp_path, [{"id": "a"}, {"id": "b"}], process, batch_size=2)
    assert stats.complete and stats.written == 0 and stats.dropped == {"bad": 2}
    assert (tmp_path / "toy" / "_SUCCESS").is_file()


def test_output_loads_with_datasets(tmp_path: Path) -> None:
    import datasets

    path = tmp_path / "run"
    run_toy(path, N)
    ds = datasets.load_dataset("json", data_files=str(path / "toy" / "*.jsonl"), split="train")
    assert len(ds) == len(outputs(path))
    assert set(ds.column_names) == {"id", "parent_id", "square"}
