"""Run untrusted Python programs: a warm pool of sandboxes (Docker or bubblewrap).

    from selfalign.sandbox import SandboxConfig, Program, open_pool

    with open_pool(SandboxConfig(workers=2, timeout_s=10)) as pool:
        for verdict in pool.run(Program(id=str(i), code=c) for i, c in enumerate(codes)):
            ...

See docs/sandbox.md for the isolation flags and the verdict statuses.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._pool import ProcessPool
from .backends import BACKEND_NAMES, BACKENDS
from .clean import clean
from .config import SandboxConfig
from .errors import SandboxUnavailable
from .image import build_image, ensure_image, ensure_rootfs, image_tag
from .verdict import STATUSES, ExecResult, Program, Status

__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "STATUSES",
    "ExecResult",
    "Program",
    "ProcessPool",
    "SandboxConfig",
    "SandboxUnavailable",
    "Status",
    "build_image",
    "clean",
    "ensure_image",
    "ensure_rootfs",
    "image_tag",
    "open_pool",
    "run_programs",
]


def open_pool(config: SandboxConfig | None = None) -> ProcessPool:
    """A pool of warm sandboxes; use it as a context manager, then call ``.run(programs)``.

    ``run`` yields one ExecResult per program, in completion order, pulling programs
    lazily (bounded memory). Leaving the ``with`` block (normally, by Ctrl-C or by an
    exception) removes every sandbox the pool started.
    """
    config = config or SandboxConfig()
    return BACKENDS[config.backend](config)


def run_programs(
    programs: Iterable[Program], config: SandboxConfig | None = None, ordered: bool = True
) -> list[ExecResult]:
    """Run programs in a fresh pool and return their verdicts (in input order by default)."""
    progs = list(programs)
    with open_pool(config) as pool:
        results = list(pool.run(progs))
    if not ordered:
        return results
    by_id: dict[str, list[ExecResult]] = {}
    for r in results:
        by_id.setdefault(r.id, []).append(r)
    return [
        by_id[p.id].pop(0) if by_id.get(p.id) else ExecResult.error(p.id, "no verdict")
        for p in progs
    ]
