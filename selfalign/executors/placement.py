"""Where a stage's batches go on a cluster: the driver, tasks, model replicas or sandbox pools.

Pure functions of the stage's resolved configs and a list of the cluster's nodes, so
they are tested without a cluster. The executor never asks what a stage *does*; it
looks at the kinds of the configs it reads: a stage that reads a
:class:`~selfalign.llm.config.ModelConfig` (``[model]``, ``[judge.model]``, ...) gets
model replicas, one per GPU, or CPU replicas where the model runs on CPU; a stage
that reads a :class:`~selfalign.sandbox.config.SandboxConfig` (and no model) gets one
sandbox pool per node; any other distributed stage runs its batches as plain tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from selfalign.errors import UserError
from selfalign.llm.config import ModelConfig
from selfalign.sandbox.config import SandboxConfig
from selfalign.stage import Stage, StageContext, config_key

Kind = Literal["driver", "tasks", "model", "sandbox"]


class ClusterTooSmall(UserError):
    """The cluster has none of what a stage's workers need (GPUs, CPUs)."""


@dataclass(frozen=True)
class NodeInfo:
    """One live node of the cluster, as the executor schedules on it."""

    node_id: str
    address: str
    cpus: float
    gpus: float


@dataclass(frozen=True)
class Placement:
    """How a stage's batches run."""

    kind: Kind
    key: str = ""
    """Consecutive stages with the same key share one pool (``generate`` loads the model
    once per replica for concepts, tasks and respond)."""
    gpus_per_replica: float = 0.0
    models: tuple[str, ...] = ()
    """The models it holds, for messages."""


@dataclass(frozen=True)
class ReplicaSpec:
    """One actor to start: on which node (``None``: wherever Ray finds room) and what it takes."""

    node_id: str | None
    num_cpus: float
    num_gpus: float


def _configs(stage: Stage, ctx: StageContext, kind: type) -> list[Any]:
    found = []
    for section in stage.sections:
        cfg = ctx.configs.get(section.name)
        if isinstance(cfg, kind):
            found.append(cfg)
    return found


def gpus_per_replica(cfg: ModelConfig, cluster_gpus: float) -> float:
    """GPUs one engine replica of ``cfg`` takes on this cluster (0: it runs on CPU)."""
    if cfg.backend == "openai":  # the engine is a server elsewhere: a replica is a client
        return 0.0
    if cfg.backend == "vllm":
        if cluster_gpus <= 0:
            raise ClusterTooSmall(
                f"the vllm backend needs GPUs and the Ray cluster has none: add GPU nodes "
                f"(`ray start --num-gpus N`) or pass --backend transformers for {cfg.model}"
            )
        return float(max(1, cfg.tensor_parallel_size))
    if cfg.device == "cpu":
        return 0.0
    if cfg.device == "cuda" and cluster_gpus <= 0:
        raise ClusterTooSmall(
            f"[model] device is cuda but the Ray cluster has no GPUs: pass --device cpu "
            f"(or auto) for {cfg.model}, or add GPU nodes"
        )
    return 1.0 if cluster_gpus > 0 else 0.0


def plan(stage: Stage, ctx: StageContext, cluster_gpus: float) -> Placement:
    """Where ``stage``'s batches run on a cluster with ``cluster_gpus`` GPUs in all."""
    if not stage.distributed:
        return Placement("driver")
    models: list[ModelConfig] = _configs(stage, ctx, ModelConfig)
    sandboxes: list[SandboxConfig] = _configs(stage, ctx, SandboxConfig)
    key = "|".join(sorted(config_key(c) for c in (*models, *sandboxes)))
    if models:
        gpus = max(gpus_per_replica(m, cluster_gpus) for m in models)
        return Placement(
            "model", key, gpus_per_replica=gpus, models=tuple(m.model for m in models)
        )
    if sandboxes:
        return Placement("sandbox", key)
    return Placement("tasks")


def replica_specs(
    placement: Placement,
    nodes: list[NodeInfo],
    *,
    replicas: int | None = None,
    cpus_per_replica: float = 1.0,
) -> list[ReplicaSpec]:
    """The actors of a pool.

    * GPU model replicas: one per ``gpus_per_replica`` GPUs of the cluster (``replicas``
      caps it); Ray picks the nodes.
    * CPU model replicas: ``replicas`` of them where Ray finds room, else one per node
      that has ``cpus_per_replica`` CPUs.
    * Sandbox pools: one per node that has a CPU (a head started with ``--num-cpus 0``
      runs none); the pool's own size is ``[sandbox] workers``.
    """
    if placement.kind == "model" and placement.gpus_per_replica > 0:
        total = sum(n.gpus for n in nodes)
        count = math.floor(total / placement.gpus_per_replica)
        if count < 1:
            raise ClusterTooSmall(
                f"one replica of {', '.join(placement.models)} needs "
                f"{placement.gpus_per_replica:g} GPUs and the cluster has {total:g}: lower "
                "--tensor-parallel-size or add GPU nodes"
            )
        if replicas:
            count = min(count, replicas)
        return [ReplicaSpec(None, 1.0, placement.gpus_per_replica) for _ in range(count)]
    if placement.kind not in ("model", "sandbox"):
        return []
    need = cpus_per_replica if placement.kind == "model" else 1.0
    fitting = [n for n in nodes if n.cpus >= need]
    if not fitting:
        what = "a model replica" if placement.kind == "model" else "a sandbox pool"
        raise ClusterTooSmall(
            f"{what} takes {need:g} CPU and no node of the Ray cluster has that many: "
            "start the nodes with `ray start --num-cpus N` (N >= 1)"
        )
    if placement.kind == "model" and replicas:
        return [ReplicaSpec(None, need, 0.0) for _ in range(replicas)]
    return [ReplicaSpec(n.node_id, need, 0.0) for n in fitting]
