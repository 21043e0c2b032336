"""Every sandbox backend by name, in one table (the LLM backends have theirs in llm/base.py).

The keys feed every choice list of a sandbox backend (``[sandbox] backend``, the
``--backend`` of ``selfalign sandbox``); each loader imports its pool class itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._pool import ProcessPool
    from .config import SandboxConfig


def _docker(config: SandboxConfig) -> ProcessPool:
    from .docker_pool import DockerPool

    return DockerPool(config)


def _bwrap(config: SandboxConfig) -> ProcessPool:
    from .bwrap_pool import BwrapPool

    return BwrapPool(config)


BACKENDS: dict[str, Callable[[SandboxConfig], ProcessPool]] = {
    "docker": _docker,
    "bwrap": _bwrap,
}
"""Backend name -> pool constructor: a warm Docker container pool, or bubblewrap namespaces."""

BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)
