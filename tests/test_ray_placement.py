"""The Ray executor's logic without a cluster: where stages go, the ordered window with
retries (against a fake dispatcher), the run-directory probe, and the local path not
importing Ray."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from selfalign.executors.placement import (
    ClusterTooSmall,
    NodeInfo,
    plan,
    replica_specs,
)
from selfalign.executors.ray_worker import RunDirNotShared, check_probe, probe_path
from selfalign.executors.window import BatchLostTooOften, WorkerLost, ordered_map
from selfalign.llm.config import ModelConfig
from selfalign.pipeline import PIPELINE, resolve_section, stage_named
from selfalign.stage import BatchResult, StageContext
from selfalign.store import RunDir

NODES = [
    NodeInfo("head", "10.0.0.1", cpus=0, gpus=0),
    NodeInfo("gpu-a", "10.0.0.2", cpus=16, gpus=4),
    NodeInfo("gpu-b", "10.0.0.3", cpus=16, gpus=4),
]


def _ctx(tmp_path: Path, **overrides: Any) -> StageContext:
    configs: dict[str, Any] = {}
    for stage in PIPELINE:
        for section in stage.sections:
            configs.setdefault(section.name, resolve_section(section, {}))
    configs.update(overrides)
    return StageContext(run=RunDir(tmp_path), configs=configs)


def test_stages_are_placed_by_the_kinds_of_config_they_read(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    kinds = {s.name: plan(s, ctx, cluster_gpus=8).kind for s in PIPELINE if s.name != "seeds"}
    assert kinds["concepts"] == kinds["tasks"] == kinds["attempts"] == "model"
    assert kinds["verdicts"] == "sandbox"
    assert kinds["examples"] == kinds["pairs"] == kinds["export"] == "driver"
    assert plan(stage_named("seeds"), ctx, 8).kind == "tasks"
    # The three generation stages share one pool (one model load per replica).
    keys = {plan(stage_named(n), ctx, 8).key for n in ("concepts", "tasks", "respond")}
    assert len(keys) == 1
    if "judgments" in kinds:  # the judge reads [judge.model]: a model stage too
        assert kinds["judgments"] == "model"


def test_model_replicas_one_per_gpu_or_per_node_on_cpu(tmp_path: Path) -> None:
    concepts = stage_named("concepts")
    on_gpu = plan(concepts, _ctx(tmp_path), cluster_gpus=8)
    assert on_gpu.gpus_per_replica == 1
    specs = replica_specs(on_gpu, NODES)
    assert len(specs) == 8 and all(s.num_gpus == 1 and s.node_id is None for s in specs)
    assert len(replica_specs(on_gpu, NODES, replicas=3)) == 3

    vllm = _ctx(tmp_path, model=ModelConfig(backend="vllm", tensor_parallel_size=2))
    assert len(replica_specs(plan(concepts, vllm, 8), NODES)) == 4
    with pytest.raises(ClusterTooSmall, match="--backend transformers"):
        plan(concepts, vllm, cluster_gpus=0)

    on_cpu = plan(concepts, _ctx(tmp_path), cluster_gpus=0)
    assert on_cpu.gpus_per_replica == 0
    cpu_nodes = [NodeInfo(n.node_id, n.address, n.cpus, 0) for n in NODES]
    # One per node that has a CPU: the head (--num-cpus 0) takes none.
    assert [s.node_id for s in replica_specs(on_cpu, cpu_nodes)] == ["gpu-a", "gpu-b"]
    assert len(replica_specs(on_cpu, cpu_nodes, replicas=5)) == 5
    with pytest.raises(ClusterTooSmall, match="--num-cpus"):
        replica_specs(on_cpu, [NODES[0]])
    forced_cpu = _ctx(tmp_path, model=ModelConfig(device="cpu"))
    assert plan(concepts, forced_cpu, cluster_gpus=8).gpus_per_replica == 0


def test_one_sandbox_pool_per_node_with_a_cpu(tmp_path: Path) -> None:
    execute = plan(stage_named("execute"), _ctx(tmp_path), cluster_gpus=8)
    assert [s.node_id for s in replica_specs(execute, NODES)] == ["gpu-a", "gpu-b"]


@dataclass
class FakeDispatcher:
    """Workers by name; ``lose`` marks which (worker, batch) submissions die."""

    workers: list[str]
    lose: set[tuple[str, int]] = field(default_factory=set)
    finished: set[tuple[str, int]] = field(default_factory=set)
    submitted: list[tuple[str, int]] = field(default_factory=list)
    in_flight_seen: list[int] = field(default_factory=list)
    pending: int = 0
    turn: int = 0

    def submit(self, batch: list[Any]) -> tuple[str, Any]:
        if not self.workers:
            raise ClusterTooSmall("no workers left")
        worker = self.workers[self.turn % len(self.workers)]
        self.turn += 1
        self.submitted.append((worker, batch[0]))
        self.pending += 1
        self.in_flight_seen.append(self.pending)
        return worker, (worker, batch)

    def result(self, handle: Any) -> BatchResult:
        worker, batch = handle
        self.pending -= 1
        if (worker, batch[0]) in self.lose:
            raise WorkerLost(f"{worker} died")
        return BatchResult(outputs=[{"id": f"out{v}", "by": worker} for v in batch])

    def done(self, handle: Any) -> bool:
        worker, batch = handle
        return (worker, batch[0]) in self.finished

    def forget(self, worker: str) -> None:
        if worker in self.workers:
            self.workers.remove(worker)


def _first(result: BatchResult, key: str) -> Any:
    out = result.outputs[0]
    assert isinstance(out, dict)
    return out[key]


def test_window_keeps_input_order_and_bounds_what_is_in_flight() -> None:
    fake = FakeDispatcher(["a", "b"])
    batches = [[i] for i in range(10)]
    got = list(ordered_map(fake, iter(batches), max_in_flight=lambda: 3))
    assert [b for b, _ in got] == batches
    assert [_first(r, "id") for _, r in got] == [f"out{i}" for i in range(10)]
    assert max(fake.in_flight_seen) == 3


def test_a_lost_workers_batches_run_again_elsewhere_once_each() -> None:
    # Worker b dies while holding batches 1 and 3 (and would have held more).
    fake = FakeDispatcher(["a", "b"], lose={("b", 1), ("b", 3)})
    got = list(ordered_map(fake, iter([[i] for i in range(6)]), max_in_flight=lambda: 4))
    assert [b[0] for b, _ in got] == list(range(6))
    assert {_first(r, "by") for b, r in got if b[0] in (1, 3)} == {"a"}
    assert fake.workers == ["a"]
    assert ("a", 1) in fake.submitted and ("a", 3) in fake.submitted


def test_what_a_lost_worker_finished_is_kept_and_the_rest_runs_again() -> None:
    # b dies on batch 1; it had finished batch 3 (its result came back) and batch 5
    # (whose result died with it).
    fake = FakeDispatcher(
        ["a", "b"], lose={("b", 1), ("b", 5)}, finished={("b", 3), ("b", 5)}
    )
    got = list(ordered_map(fake, iter([[i] for i in range(8)]), max_in_flight=lambda: 6))
    assert [b[0] for b, _ in got] == list(range(8))
    by = {b[0]: _first(r, "by") for b, r in got}
    assert by[3] == "b" and by[1] == by[5] == "a"
    assert ("a", 3) not in fake.submitted


def test_a_batch_lost_on_every_attempt_stops_the_stage_with_advice() -> None:
    fake = FakeDispatcher(["a", "b", "c"], lose={("a", 0), ("b", 0), ("c", 0)})
    with pytest.raises(BatchLostTooOften, match="run the same command again"):
        list(ordered_map(fake, iter([[0]]), max_in_flight=lambda: 1, max_attempts=3))


def test_the_stage_s_own_error_is_not_retried() -> None:
    class Failing(FakeDispatcher):
        def result(self, handle: Any) -> BatchResult:
            raise ValueError("bad record")

    fake = Failing(["a", "b"])
    with pytest.raises(ValueError, match="bad record"):
        list(ordered_map(fake, iter([[0], [1]]), max_in_flight=lambda: 2))
    assert len(fake.submitted) == 2  # no resubmission


def test_the_probe_tells_a_node_that_does_not_see_the_run(tmp_path: Path) -> None:
    probe_path(tmp_path).write_text("token-1\n")
    assert check_probe(str(tmp_path), "token-1")
    with pytest.raises(RunDirNotShared, match="same path"):
        check_probe(str(tmp_path), "token-2")
    with pytest.raises(RunDirNotShared, match="docs/scale.md"):
        check_probe(str(tmp_path / "elsewhere"), "token-1")


def test_the_local_path_never_imports_ray(tmp_path: Path) -> None:
    # A whole stage through its command with --executor local, in a fresh interpreter.
    script = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from click.testing import CliRunner\n"
        "from ray_stages import TOY_PIPELINE\n"
        "from selfalign.cli import make_cli\n"
        "from selfalign.pipeline import PIPELINE\n"
        "make_cli(PIPELINE)\n"
        "args = ['squares', '--run', sys.argv[1], '--executor', 'local']\n"
        "result = CliRunner().invoke(make_cli(TOY_PIPELINE), args)\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    args = [sys.executable, "-c", script, str(tmp_path / "run"), str(Path(__file__).parent)]
    cp = subprocess.run(args, capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert (tmp_path / "run" / "squares" / "_SUCCESS").exists()
