"""What runs on the Ray workers: a stage's processor, built once per worker, over batches.

A worker gets the stage and its context (without the driver's resources: each worker
loads its own model or opens its own sandbox pool), checks that it sees the run
directory the driver sees, builds the stage's processor and runs batches through it.
It writes nothing into the run directory: results go back to the driver, which
commits them (:mod:`selfalign.stage_runner`).

Imported on the workers by reference; it imports Ray only inside functions.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from selfalign.errors import UserError
from selfalign.stage import BatchResult, Processor, Resources, Stage, StageContext

logger = logging.getLogger(__name__)

PROBE_NAME = ".selfalign-ray-probe"
"""The file the driver writes under ``RUN/`` for every node to read back."""


class RunDirNotShared(UserError):
    """A node does not see the run directory the driver writes."""


def where() -> str:
    """This worker, for messages: host, address and process."""
    return f"{socket.gethostname()} (pid {os.getpid()})"


def probe_path(run_path: str | os.PathLike[str]) -> Path:
    return Path(run_path) / PROBE_NAME


def check_probe(run_path: str, token: str) -> str:
    """Raise :class:`RunDirNotShared` unless this process reads ``token`` in the run's probe
    file; return where it ran (for the driver's log)."""
    path = probe_path(run_path)
    try:
        found = path.read_text("utf-8").strip()
    except OSError as exc:
        found = f"<unreadable: {exc.strerror or exc}>"
    if found != token:
        seen = "another run's probe" if found and not found.startswith("<") else found
        raise RunDirNotShared(
            f"the Ray worker on {where()} does not see the run directory {run_path} that "
            f"the driver writes (its probe file {path.name}: {seen}). Every node must "
            "mount the run directory at the same path (NFS, Lustre, a cloud filesystem "
            "mount); see docs/scale.md, 'Where the run directory lives'"
        )
    return where()


def setup_process(cwd: str, log_level: int) -> None:
    """Work where the driver works (relative paths in configs mean the same) and log like it."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    else:
        logger.warning("%s: the driver's directory %s does not exist here", where(), cwd)
    # A worker process is an entry point of its own: without a handler the library's
    # warnings would never reach Ray's log forwarding to the driver.
    package = logging.getLogger("selfalign")
    package.setLevel(log_level)
    if not package.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        package.addHandler(handler)


class StageWorker:
    """One actor of a pool: holds its own models and sandbox pools across the stages it serves.

    ``process`` builds the stage's processor on the first batch of each ``key`` (one
    key per stage run), so a model loads once per replica and is shared by every
    stage with the same ``[model]``.
    """

    def __init__(self, cwd: str, log_level: int) -> None:
        setup_process(cwd, log_level)
        self.resources = Resources()
        self.current: tuple[str, Processor] | None = None

    def ready(self) -> str:
        return where()

    def process(self, key: str, payload: list[Any], batch: list[Any]) -> BatchResult:
        if self.current is None or self.current[0] != key:
            self.current = (key, build_processor(payload, self.resources))
        return self.current[1](batch)

    def close(self) -> None:
        self.current = None
        self.resources.close()


_task_state: dict[str, Any] = {}


def run_batch_task(
    key: str, payload: list[Any], batch: list[Any], cwd: str, log_level: int
) -> BatchResult:
    """One batch of a stage that holds no model and no pool, as a plain Ray task.

    Ray reuses worker processes for tasks, so the processor of the current stage run is
    kept between batches on the same process.
    """
    if _task_state.get("key") != key:
        if "cwd" not in _task_state:
            setup_process(cwd, log_level)
            _task_state["cwd"] = cwd
        resources = _task_state.setdefault("resources", Resources())
        _task_state["processor"] = build_processor(payload, resources)
        _task_state["key"] = key
    return _task_state["processor"](batch)


def build_processor(payload: list[Any], resources: Resources) -> Processor:
    """The stage's processor on this worker, after checking it sees the run directory.

    ``payload`` is ``[stage ref, context ref, probe token]``: references inside a list
    are not resolved by Ray, so a worker fetches the stage and context once per stage
    run instead of with every batch.
    """
    import ray

    stage_ref, ctx_ref, token = payload
    stage: Stage = ray.get(stage_ref)
    ctx: StageContext = ray.get(ctx_ref)
    check_probe(str(ctx.run.path), token)
    # The models and pools the previous stage held but this one does not read are freed
    # (the model before the sandbox stage), as `generate` frees them on the driver.
    resources.release_except(
        ctx.configs[s.name] for s in stage.sections if s.name in ctx.configs
    )
    ctx.resources = resources
    logger.info("%s: building the %s processor", where(), stage.name)
    return stage.processor(ctx)


def read_probe_task(run_path: str, token: str) -> str:
    """The start-up check, scheduled once on every node."""
    return check_probe(run_path, token)
