"""The Ray executor on a real two-node Ray cluster started on this machine.

The same records with the same ids as the local executor (toy stages in-process, then
a whole ``generate`` with the real 135M model and real Docker), a worker node killed
during ``execute``, and a driver killed during ``execute`` and resumed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray", reason="the Ray executor's tests need pip install 'selfalign[ray]'")

from selfalign.pipeline import PIPELINE, run_named  # noqa: E402
from selfalign.records import Attempt, Seed, stable_id  # noqa: E402
from selfalign.sandbox.config import SandboxConfig  # noqa: E402
from selfalign.stage_runner import LocalExecutor  # noqa: E402
from selfalign.store import RunDir  # noqa: E402

from . import ray_stages  # noqa: E402
from .ray_cluster import LOCAL_ONLY, Cluster, ray_cluster  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.docker]

SELFALIGN = str(Path(sys.executable).with_name("selfalign"))
LOST_LOG = "lost its worker"

SEED_CODES = [
    'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b',
    'def is_even(n):\n    """Tell whether n is even."""\n    return n % 2 == 0',
    'def first_word(s):\n    """Return the first word of s."""\n    return s.split()[0]',
]

# configs/demo.toml cut down: one record per batch so that the batches spread over both
# nodes, few tokens, two samples, one judge preference.
TINY_CONFIG = """
[model]
backend = "transformers"
model = "embedded:smollm2-135m-instruct"
mode = "chat"

[concepts]
num_fewshot = 0
answer_prefix = "The key programming concepts of this snippet are:\\n"
temperature = 0.3
repetition_penalty = 1.0
max_tokens = 20
batch_size = 1

[tasks]
num_fewshot = 0
answer_prefix = "Write a Python {category} `"
category_weights = { function = 1.0 }
difficulty_weights = { easy = 1.0 }
max_tokens = 40
batch_size = 1

[respond]
num_fewshot = 0
answer_prefix = "```python\\n"
num_samples = 2
temperature = 0.3
max_tokens = 56
tests_prefill = true
tests_max_tokens = 28
tests_max_asserts = 1
batch_size = 1

[execute]
batch_size = 2

[sandbox]
workers = 1
timeout_s = 10

[judge]
preferences = ["readability"]
max_tokens = 24
batch_size = 1

[select]
pick = "random"

[export]
plots = false
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node and a worker node, one CPU each, with resources of their own."""
    with pytest.MonkeyPatch.context() as patch, ray_cluster(
        head_cpus=1,
        head_resources={"head_node": 1},
        workers=(("worker", 1, {"worker_node": 1}),),
    ) as c:
        for key, value in LOCAL_ONLY.items():  # this process is a driver too
            patch.setenv(key, value)
        yield c


@pytest.fixture(scope="module")
def sandbox_image() -> str:
    from selfalign.sandbox import SandboxUnavailable, ensure_image

    try:
        return ensure_image()
    except SandboxUnavailable as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("SELFALIGN_REQUIRE_DOCKER"):
            raise
        pytest.skip(f"no sandbox: {exc}")


def _shards(run: RunDir, stage: str) -> list[dict[str, Any]]:
    return list(run.stage(stage).read())


def _rejected(run: RunDir, stage: str) -> list[tuple[str, str]]:
    return sorted((str(r["id"]), str(r["reason"])) for r in run.stage(stage).read_rejected())


# -- toy stages, this process as the driver -------------------------------------------


def test_toy_stages_match_the_local_executor(cluster: Cluster, tmp_path: Path) -> None:
    from ray import cloudpickle

    from selfalign.executors.ray import RayExecutor
    from selfalign.executors.ray_worker import PROBE_NAME

    # The workers cannot import tests/: the toy stages travel by value.
    cloudpickle.register_pickle_by_value(ray_stages)
    configs = {
        "toy": ray_stages.ToyConfig(sleep_s=0.2),
        "sandbox": SandboxConfig(workers=1),
    }
    pipeline = ray_stages.TOY_PIPELINE
    local, remote = RunDir(tmp_path / "local"), RunDir(tmp_path / "ray")
    executor = RayExecutor(address=cluster.address)
    try:
        for stage in pipeline:
            want = run_named(
                local, stage.name, configs, executor=LocalExecutor(), pipeline=pipeline
            )
            got = run_named(remote, stage.name, configs, executor=executor, pipeline=pipeline)
            # Same records in the same order, same rejections, same counters.
            assert _shards(remote, stage.name) == _shards(local, stage.name)
            assert _rejected(remote, stage.name) == _rejected(local, stage.name)
            assert (got.read, got.written, got.dropped) == (want.read, want.written, want.dropped)
            assert got.metrics["batches"] == want.metrics["batches"] == 12
            workers = {k for k in got.metrics if k.startswith("pid_")}
            if stage.name == "pooled":  # one sandbox-pool actor per node, both used
                assert len(workers) == 2
            if stage.name == "driver_squares":  # not distributed: in this process
                assert workers == {f"pid_{os.getpid()}"}
            assert f"pid_{os.getpid()}" not in workers or not stage.distributed

        # A stage's own error reaches the driver as itself; what was committed stays,
        # and the next run resumes without redoing it.
        failing = {**configs, "toy": ray_stages.ToyConfig(fail_on=17, sleep_s=0.1)}
        with pytest.raises(ValueError, match="fails on 17 on purpose"):
            run_named(remote, "squares", failing, executor=executor, pipeline=pipeline, force=True)
        store = remote.stage("squares")
        assert not store.is_complete()
        partial = {r["id"] for r in store.read()}
        assert partial and "sq17" not in partial
        run_named(remote, "squares", configs, executor=executor, pipeline=pipeline)
        ids = [r["id"] for r in store.read()]
        assert sorted(ids) == sorted(r["id"] for r in local.stage("squares").read())
        assert len(ids) == len(set(ids))
        assert (remote.path / PROBE_NAME).exists()  # there while the executor runs
    finally:
        executor.close()
    assert not (remote.path / PROBE_NAME).exists()


# -- a whole generate: real model, real Docker ----------------------------------------


def _seeded_run(path: Path) -> RunDir:
    run = RunDir(path)
    store = run.stage("seeds")
    store.dir.mkdir(parents=True)
    seeds = [
        Seed(id=stable_id("seed", code), parent_id=None, code=code, name=f"s{i}").to_dict()
        for i, code in enumerate(SEED_CODES)
    ]
    store.commit_batch(seeds, 0)
    store.compact()
    store.mark_success()
    return run


def _selfalign(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SELFALIGN, *args], capture_output=True, text=True, timeout=1500, env=env
    )


def _env(cluster: Cluster) -> dict[str, str]:
    env = dict(cluster.env)
    env["COLUMNS"] = "200"
    return env


def test_generate_on_two_nodes_equals_local(
    cluster: Cluster, sandbox_image: str, tmp_path: Path
) -> None:
    config = tmp_path / "tiny.toml"
    sandbox = f'workers = 1\nimage = "{sandbox_image}"\n'
    config.write_text(TINY_CONFIG.replace("workers = 1\n", sandbox), "utf-8")
    local, remote = _seeded_run(tmp_path / "local"), _seeded_run(tmp_path / "ray")
    env = _env(cluster)
    done = _selfalign("generate", "--run", str(local.path), "--config", str(config), env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    done = _selfalign(
        "generate", "--run", str(remote.path), "--config", str(config),
        "--executor", "ray", "--ray-address", cluster.address, "--log-level", "info",
        env=env,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # A worker on each node (one actor per node serves the model and the sandbox stages).
    logs = done.stdout + done.stderr
    assert "worker-1 is up" in logs and "worker-2 is up" in logs, logs[-3000:]

    stages = [s.name for s in PIPELINE if s.in_generate and s.record is not None]
    assert {"concepts", "tasks", "attempts", "verdicts"} <= set(stages)
    for stage in stages:
        want, got = _shards(local, stage), _shards(remote, stage)
        assert sorted(r["id"] for r in got) == sorted(r["id"] for r in want), stage
        # Same text, not just the same ids: the replicas batch and seed as the driver does.
        by_id = {r["id"]: r for r in want}
        for record in got:
            assert record.get("raw_output") == by_id[record["id"]].get("raw_output"), stage
        assert _rejected(remote, stage) == _rejected(local, stage), stage
        assert remote.stage(stage).is_complete()
    assert len(_shards(remote, "attempts")) == 6  # something ran: 3 tasks x 2 samples
    assert len(_shards(remote, "verdicts")) == 6
    local_stats = json.loads((local.path / "verdicts" / "stats.json").read_text())
    ray_stats = json.loads((remote.path / "verdicts" / "stats.json").read_text())
    assert ray_stats["metrics"]["by_status"] == local_stats["metrics"]["by_status"]


# -- losing a node, losing the driver -------------------------------------------------


def _slow_attempts(path: Path, n: int, salt: str) -> tuple[RunDir, set[str]]:
    """A run whose attempts each take a second in the sandbox (so that a kill lands mid-stage)."""
    run = RunDir(path)
    store = run.stage("attempts")
    store.dir.mkdir(parents=True)
    attempts = []
    for i in range(n):
        solution = f"import time\n\ndef f():\n    time.sleep(1.0)\n    return {i}  # {salt}\n"
        attempts.append(
            Attempt(
                id=stable_id("attempt", salt, i),
                parent_id=f"task-{i}",
                task_id=f"task-{i}",
                solution=solution,
                tests=f"assert f() == {i}\n",
            ).to_dict()
        )
    store.commit_batch(attempts, 0)
    store.compact()
    store.mark_success()
    return run, {a["id"] for a in attempts}


def _execute(run: RunDir, cluster: Cluster, image: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            SELFALIGN, "execute", "--run", str(run.path), "--executor", "ray",
            "--ray-address", cluster.address, "--batch-size", "1", "--workers", "1",
            "--image", image, "--timeout-s", "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(cluster),
    )


def _wait_for_shard(run: RunDir, proc: subprocess.Popen[str], timeout_s: float = 600) -> None:
    folder = run.path / "verdicts"
    deadline = time.monotonic() + timeout_s
    while not list(folder.glob("part-b*.jsonl")):
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate()
            pytest.fail(f"execute ended before its first shard: {out[-2000:]}{err[-2000:]}")
        time.sleep(0.2)


def _check_every_id_once(run: RunDir, attempt_ids: set[str]) -> None:
    verdicts = _shards(run, "verdicts")
    parents = Counter(v["parent_id"] for v in verdicts)
    assert set(parents) == attempt_ids
    assert max(parents.values()) == 1
    assert len({v["id"] for v in verdicts}) == len(verdicts)
    assert {v["status"] for v in verdicts} == {"pass"}
    stats = json.loads((run.path / "verdicts" / "stats.json").read_text())
    assert stats["written"] == len(attempt_ids) and stats["complete"]


def test_execute_survives_losing_the_worker_node(
    cluster: Cluster, sandbox_image: str, tmp_path: Path
) -> None:
    run, attempt_ids = _slow_attempts(tmp_path / "run", 8, "node-lost")
    proc = _execute(run, cluster, sandbox_image)
    _wait_for_shard(run, proc)
    cluster.node("worker").kill()
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    # The worker node had batches: they ran again on the head.
    assert LOST_LOG in err, err[-3000:]
    _check_every_id_once(run, attempt_ids)


def test_execute_resumes_after_the_driver_is_killed(
    cluster: Cluster, sandbox_image: str, tmp_path: Path
) -> None:
    run, attempt_ids = _slow_attempts(tmp_path / "run", 6, "driver-killed")
    proc = _execute(run, cluster, sandbox_image)
    _wait_for_shard(run, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    store = run.stage("verdicts")
    assert not store.is_complete()
    before = {v["parent_id"] for v in store.read()}
    assert before and before < attempt_ids
    proc = _execute(run, cluster, sandbox_image)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    _check_every_id_once(run, attempt_ids)
