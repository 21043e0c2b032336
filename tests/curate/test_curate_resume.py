"""The execute stage resumes after a kill without running finished programs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfalign.curate.config import ExecuteConfig
from selfalign.pipeline import run_named
from selfalign.records import Attempt, stable_id
from selfalign.sandbox import SandboxConfig
from selfalign.store import RunDir, dumps_line

pytestmark = pytest.mark.docker

N = 12
LAUNCH = (
    "import sys; from selfalign.cli import cli; "
    "cli(['execute', *sys.argv[1:]], standalone_mode=True)"
)


def _write_attempts(run: RunDir) -> None:
    rows = []
    for i in range(N):
        aid = stable_id("attempt", "resume", i)
        rows.append(
            Attempt(
                id=aid,
                parent_id="task-r",
                task_id="task-r",
                sample_index=i,
                solution=f"import time\n\ndef f():\n    time.sleep(0.3)\n    return {i}\n",
                tests=f"assert f() == {i}\n",
            ).to_dict()
        )
    store = run.stage("attempts")
    store.dir.mkdir(parents=True)
    (store.dir / "part-00000.jsonl").write_text("".join(dumps_line(r) for r in rows))
    store.mark_success()


def test_execute_resumes_after_kill(run_dir: RunDir, sandbox_image: str) -> None:
    _write_attempts(run_dir)
    args = [
        "--run",
        str(run_dir.path),
        "--batch-size",
        "2",
        "--workers",
        "1",
        "--timeout-s",
        "5",
        "--image",
        sandbox_image,
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[2],
    )
    verdicts = run_dir.stage("verdicts")
    deadline = time.monotonic() + 240
    try:
        while len(verdicts.shards()) < 2:
            assert proc.poll() is None, "execute ended before it could be killed"
            assert time.monotonic() < deadline, "execute wrote no shard in time"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {v["id"]: v for v in verdicts.read()}
    assert 2 <= len(before) < N and not verdicts.is_complete()
    executed_before = verdicts.load_stats().metrics["executed"]

    stats = run_named(
        run_dir,
        "execute",
        {
            "execute": ExecuteConfig(batch_size=2),
            "sandbox": SandboxConfig(workers=1, timeout_s=5, image=sandbox_image),
        },
    )
    assert stats.complete
    lines = [json.loads(x) for p in verdicts.shards() for x in p.read_text().splitlines()]
    assert sorted(v["attempt_id"] for v in lines) == sorted(
        stable_id("attempt", "resume", i) for i in range(N)
    )
    assert all(v["status"] == "pass" for v in lines)
    # Every program ran exactly once over both runs: the resumed run ran only the rest.
    assert stats.metrics["executed"] == N
    assert executed_before == len(before)
    after = {v["id"]: v for v in lines}
    assert all(after[i] == v for i, v in before.items())
