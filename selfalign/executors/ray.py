"""The Ray executor: a stage's batches on a Ray cluster, results committed by the driver.

``--executor ray`` hands every stage's batches to :class:`RayExecutor`:

* whole-data-set stages (``distributed=False``: select, pairs, export) run in this
  process, as with the local executor;
* a stage that reads a model config gets a pool of model replicas (one per GPU, or
  CPU replicas where the model runs on CPU), a stage that reads a sandbox config gets
  one sandbox pool per node, any other stage runs its batches as plain Ray tasks
  (:mod:`selfalign.executors.placement`); a pool serves consecutive stages with the
  same configs, so ``generate`` loads the model once per replica;
* a bounded window of batches is in flight; results come back in input order and a
  batch whose worker is lost runs again on another (:mod:`selfalign.executors.window`);
* nothing on the workers writes to the run directory: the driver's stage runner writes
  shards, rejections and stats, so resume and ``stats.json`` are those of a local run.

The run directory must be visible at the same path on every node: the driver writes
a probe file under ``RUN/`` and every node (and every worker, when it builds a
stage's processor) reads it back, or the stage stops with a clear error.

Ray is an optional dependency (``pip install 'selfalign[ray]'``); only this package's
Ray modules import it.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from selfalign.errors import UserError
from selfalign.executors.placement import (
    ClusterTooSmall,
    NodeInfo,
    Placement,
    ReplicaSpec,
    plan,
    replica_specs,
)
from selfalign.executors.ray_worker import (
    StageWorker,
    probe_path,
    read_probe_task,
    run_batch_task,
)
from selfalign.executors.window import WorkerLost, ordered_map
from selfalign.stage import BatchResult, Stage, StageContext
from selfalign.stage_runner import LocalExecutor
from selfalign.store import RunDir, atomic_write_text

try:
    import ray
    from ray import exceptions as ray_errors
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    raise UserError(
        "--executor ray needs Ray: pip install 'selfalign[ray]' (or run with --executor local)"
    ) from exc

logger = logging.getLogger(__name__)

# A worker is gone when these come back; anything else raised by a batch is the stage's.
_LOST = (
    ray_errors.RayActorError,
    ray_errors.WorkerCrashedError,
    ray_errors.NodeDiedError,
    ray_errors.ObjectLostError,
    ray_errors.OutOfMemoryError,
)


class ClusterUnavailable(UserError):
    """The Ray cluster cannot be reached."""


def _live_nodes() -> list[NodeInfo]:
    return [
        NodeInfo(
            node_id=n["NodeID"],
            address=str(n.get("NodeManagerAddress", "?")),
            cpus=float(n.get("Resources", {}).get("CPU", 0)),
            gpus=float(n.get("Resources", {}).get("GPU", 0)),
        )
        for n in ray.nodes()
        if n.get("Alive")
    ]


def _unwrap(exc: ray_errors.RayTaskError) -> BaseException:
    """The stage's own exception (a ``UserError`` then prints as one line), else Ray's."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


class _TaskDispatcher:
    """Batches as Ray tasks, wherever Ray finds a CPU; Ray retries nothing (the window does)."""

    def __init__(self, key: str, payload: list[Any], cwd: str, log_level: int) -> None:
        self.key, self.payload, self.cwd, self.log_level = key, payload, cwd, log_level
        self.remote = ray.remote(run_batch_task).options(max_retries=0, num_cpus=1)
        self.names = itertools.count()

    def submit(self, batch: list[Any]) -> tuple[str, Any]:
        ref = self.remote.remote(self.key, self.payload, batch, self.cwd, self.log_level)
        return f"task-{next(self.names)}", ref

    def result(self, handle: Any) -> BatchResult:
        return _get(handle)

    def done(self, handle: Any) -> bool:
        ready, _ = ray.wait([handle], timeout=0)
        return bool(ready)

    def forget(self, worker: str) -> None:
        return None


def _get(ref: Any) -> BatchResult:
    try:
        return ray.get(ref)
    except ray_errors.RayTaskError as exc:
        raise _unwrap(exc) from None
    except _LOST as exc:
        raise WorkerLost(f"{type(exc).__name__}: {exc}") from exc


class _ActorPool:
    """Actors that hold models or sandbox pools; batches go to the least busy live one."""

    def __init__(
        self,
        placement: Placement,
        specs: list[ReplicaSpec],
        *,
        respec: Callable[[Placement], list[ReplicaSpec]],
        startup_timeout_s: float,
        cwd: str,
        log_level: int,
    ) -> None:
        self.placement = placement
        self.specs = specs
        self.respec = respec
        self.startup_timeout_s = startup_timeout_s
        self.cwd, self.log_level = cwd, log_level
        self.actors: dict[str, Any] = {}
        self.busy: dict[str, int] = {}
        self.owner: dict[Any, str] = {}
        self.started = 0
        self.key = ""
        self.payload: list[Any] = []
        self._start(specs)

    def _start(self, specs: list[ReplicaSpec]) -> None:
        worker_class = ray.remote(StageWorker)
        pending: dict[Any, tuple[str, Any]] = {}
        for spec in specs:
            self.started += 1
            name = f"worker-{self.started}"
            actor = worker_class.options(**_actor_options(spec)).remote(self.cwd, self.log_level)
            pending[actor.ready.remote()] = (name, actor)
        deadline = time.monotonic() + self.startup_timeout_s
        while pending and time.monotonic() < deadline:
            ready, _ = ray.wait(list(pending), timeout=max(0.0, deadline - time.monotonic()))
            for ref in ready:
                name, actor = pending.pop(ref)
                try:
                    where = ray.get(ref)
                except ray_errors.RayError as exc:  # died, or its node went away meanwhile
                    logger.warning("a %s worker did not start: %s", self.placement.kind, exc)
                    continue
                self.actors[name] = actor
                self.busy[name] = 0
                logger.info("%s worker %s is up on %s", self.placement.kind, name, where)
        for name, actor in pending.values():
            logger.warning(
                "%s worker %s found no room on the cluster in %.0fs; going on without it",
                self.placement.kind,
                name,
                self.startup_timeout_s,
            )
            ray.kill(actor)
        if not self.actors:
            raise ClusterTooSmall(
                f"no {self.placement.kind} worker could start on the Ray cluster in "
                f"{self.startup_timeout_s:.0f}s (wanted {len(specs)}; "
                f"{_resources_text(specs)} each): check `ray status` for free resources"
            )
        logger.info("%d %s workers", len(self.actors), self.placement.kind)

    def bind(self, key: str, payload: list[Any]) -> None:
        """Serve the stage run ``key`` next."""
        self.key, self.payload = key, payload

    def size(self) -> int:
        return len(self.actors)

    def submit(self, batch: list[Any]) -> tuple[str, Any]:
        if not self.actors:
            logger.warning("every %s worker was lost; starting new ones", self.placement.kind)
            self._start(self.respec(self.placement))
        name = min(self.busy, key=lambda n: self.busy[n])
        ref = self.actors[name].process.remote(self.key, self.payload, batch)
        self.busy[name] += 1
        self.owner[ref] = name
        return name, ref

    def result(self, handle: Any) -> BatchResult:
        name = self.owner.pop(handle, None)
        if name in self.busy:
            self.busy[name] -= 1
        return _get(handle)

    def done(self, handle: Any) -> bool:
        ready, _ = ray.wait([handle], timeout=0)
        return bool(ready)

    def forget(self, worker: str) -> None:
        actor = self.actors.pop(worker, None)
        self.busy.pop(worker, None)
        self.owner = {ref: name for ref, name in self.owner.items() if name != worker}
        if actor is not None:
            logger.warning("%s worker %s is gone", self.placement.kind, worker)
            ray.kill(actor)

    def close(self) -> None:
        """Close every actor's models and sandboxes (containers removed), then end it."""
        closing = [actor.close.remote() for actor in self.actors.values()]
        if closing:
            ray.wait(closing, num_returns=len(closing), timeout=60)
        for actor in self.actors.values():
            ray.kill(actor)
        self.actors.clear()
        self.busy.clear()


def _actor_options(spec: ReplicaSpec) -> dict[str, Any]:
    options: dict[str, Any] = {
        "num_cpus": spec.num_cpus,
        "num_gpus": spec.num_gpus,
        # A lost actor is not restarted by Ray: its batches go to the others, and a new
        # pool starts only when all are lost (max_restarts would replay on a dead node).
        "max_restarts": 0,
        "max_task_retries": 0,
    }
    if spec.node_id is not None:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(spec.node_id, soft=False)
    return options


def _resources_text(specs: list[ReplicaSpec]) -> str:
    if not specs:
        return "nothing"
    spec = specs[0]
    return f"{spec.num_cpus:g} CPU" + (f" and {spec.num_gpus:g} GPU" if spec.num_gpus else "")


class RayExecutor:
    """Runs batches on a Ray cluster (see the module docstring); the driver writes everything.

    ``address``: the cluster (default ``$RAY_ADDRESS``, else the cluster last started on
    this machine by ``ray start``, else a new local one). ``replicas``: how many model
    replicas (default: one per GPU, or one per node for models on CPU).
    ``max_in_flight``: batches submitted at once (default: twice the workers).
    ``max_attempts``: runs of one batch whose worker keeps getting lost.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        replicas: int | None = None,
        cpus_per_replica: float = 1.0,
        max_in_flight: int | None = None,
        max_attempts: int = 3,
        startup_timeout_s: float = 300.0,
    ) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.replicas = replicas
        self.cpus_per_replica = cpus_per_replica
        self.max_in_flight = max_in_flight
        self.max_attempts = max_attempts
        self.startup_timeout_s = startup_timeout_s
        self._connected = False
        self._owns_connection = False
        self._pool: _ActorPool | None = None
        self._probes: dict[Path, str] = {}

    # -- the Executor protocol -------------------------------------------------------

    def map(
        self, stage: Stage, ctx: StageContext, batches: Iterator[list[Any]]
    ) -> Iterator[tuple[list[Any], BatchResult]]:
        if not stage.distributed:
            yield from LocalExecutor().map(stage, ctx, batches)
            return
        first = next(batches, None)
        if first is None:  # nothing left to do: no cluster, no model load
            return
        todo = itertools.chain([first], batches)
        self._connect()
        run_path = ctx.run.path.resolve()
        # The probe is read on every node while the pool starts (its result is awaited
        # below, before any batch runs: a worker checks the probe again itself).
        token, probes = self._probe(run_path)
        placement = plan(stage, ctx, sum(n.gpus for n in _live_nodes()))
        # Ship the context once; workers see an absolute run path and no driver resources.
        shipped = replace(ctx, run=RunDir(run_path), resources=None)
        payload = [ray.put(stage), ray.put(shipped), token]
        key = f"{stage.name}-{secrets.token_hex(4)}"
        cwd, level = os.getcwd(), logging.getLogger("selfalign").getEffectiveLevel()
        if placement.kind == "tasks":
            self._close_pool()
            self._await_probe(run_path, probes)
            cpus = sum(n.cpus for n in _live_nodes())
            dispatcher = _TaskDispatcher(key, payload, cwd, level)
            window = self.max_in_flight or max(2, int(2 * cpus))
            logger.info("%s: batches as Ray tasks, %d in flight", stage.name, window)
            yield from ordered_map(
                dispatcher, todo, max_in_flight=lambda: window, max_attempts=self.max_attempts
            )
            return
        pool = self._pool_for(placement, cwd, level)
        self._await_probe(run_path, probes)
        pool.bind(key, payload)
        logger.info("%s: %d %s workers", stage.name, pool.size(), placement.kind)
        finished = False
        try:
            yield from ordered_map(
                pool,
                todo,
                max_in_flight=lambda: self.max_in_flight or 2 * max(1, pool.size()),
                max_attempts=self.max_attempts,
            )
            finished = True
        finally:
            if not finished:
                # Batches still queued on the actors belong to a map nobody reads any more.
                self._close_pool()

    def close(self) -> None:
        self._close_pool()
        for path, token in self._probes.items():
            probe = probe_path(path)
            try:
                if probe.read_text("utf-8").strip() == token:
                    probe.unlink()
            except OSError:
                pass
        self._probes.clear()
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
        self._connected = self._owns_connection = False

    # -- internals -------------------------------------------------------------------

    def _connect(self) -> None:
        if self._connected:
            return
        if ray.is_initialized():  # a library caller connected already: use and keep it
            self._connected = True
            return
        try:
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=True)
        except (ConnectionError, RuntimeError) as exc:
            raise ClusterUnavailable(
                f"could not reach the Ray cluster at {self.address or '(auto)'}: {exc}. Start "
                "one with `ray start --head`, or pass --ray-address HOST:PORT"
            ) from exc
        self._connected = self._owns_connection = True
        nodes = _live_nodes()
        logger.info(
            "Ray cluster: %d nodes, %g CPUs, %g GPUs",
            len(nodes),
            sum(n.cpus for n in nodes),
            sum(n.gpus for n in nodes),
        )

    def _probe(self, run_path: Path) -> tuple[str, list[Any]]:
        """Write the probe under ``RUN/`` (once per run directory) and have every live node
        read it back; returns the token and the reads to await."""
        token = self._probes.get(run_path)
        if token is not None:
            return token, []
        token = secrets.token_hex(16)
        run_path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(probe_path(run_path), token + "\n")
        self._probes[run_path] = token
        reader = ray.remote(read_probe_task)
        reads = [
            reader.options(
                num_cpus=0,
                max_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
            ).remote(str(run_path), token)
            for node in _live_nodes()
        ]
        return token, reads

    def _await_probe(self, run_path: Path, reads: list[Any]) -> None:
        for ref in reads:
            try:
                ray.get(ref, timeout=self.startup_timeout_s)
            except ray_errors.RayTaskError as exc:
                raise _unwrap(exc) from None
            except _LOST:  # the node went away meanwhile: nothing will run there
                continue
            except ray_errors.GetTimeoutError:
                raise ClusterUnavailable(
                    f"a node of the Ray cluster did not answer the run directory check in "
                    f"{self.startup_timeout_s:.0f}s: check `ray status`"
                ) from None
        if reads:
            logger.info("the run directory %s is visible on %d nodes", run_path, len(reads))

    def _pool_for(self, placement: Placement, cwd: str, level: int) -> _ActorPool:
        specs = self._specs(placement)
        pool = self._pool
        # Actors of the same shape serve the next stage too (on CPU, the model replicas
        # and the sandbox pools are both one actor per node): no new processes, and each
        # worker frees what the next stage does not read, as `generate` does locally.
        same = pool is not None and (pool.placement == placement or pool.specs == specs)
        if pool is not None and same and pool.size():
            pool.placement = placement
            return pool
        self._close_pool()
        self._pool = _ActorPool(
            placement,
            specs,
            respec=self._specs,
            startup_timeout_s=self.startup_timeout_s,
            cwd=cwd,
            log_level=level,
        )
        return self._pool

    def _specs(self, placement: Placement) -> list[ReplicaSpec]:
        return replica_specs(
            placement,
            _live_nodes(),
            replicas=self.replicas,
            cpus_per_replica=self.cpus_per_replica,
        )

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
