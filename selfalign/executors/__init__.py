"""Where a stage's batches run: every executor by name, in one table.

``local`` runs them in this process, one after the other; ``ray`` runs them on a Ray
cluster (``pip install 'selfalign[ray]'``). Executors never know what a stage does:
they take its batches and hand back each batch with its result, in input order; the
stage runner on the driver writes everything (:mod:`selfalign.stage_runner`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from selfalign.stage_runner import LocalExecutor

if TYPE_CHECKING:
    from selfalign.stage_runner import Executor


@dataclass(frozen=True)
class ExecutorOptions:
    """How to reach the executor: its name, and for Ray the cluster's address."""

    name: str = "local"
    ray_address: str | None = field(default=None)


def _local(options: ExecutorOptions) -> Executor:
    return LocalExecutor()


def _ray(options: ExecutorOptions) -> Executor:
    from selfalign.executors.ray import RayExecutor

    return RayExecutor(address=options.ray_address)


EXECUTORS: dict[str, Callable[[ExecutorOptions], Executor]] = {
    "local": _local,
    "ray": _ray,
}
"""Executor name -> constructor. Each imports its own heavy dependencies."""


def make_executor(options: ExecutorOptions) -> Executor:
    return EXECUTORS[options.name](options)
