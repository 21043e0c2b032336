"""One sandbox pool for a whole training run, that a failure never takes the training down."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfalign.sandbox import ExecResult, Program, SandboxConfig

logger = logging.getLogger(__name__)


class SandboxBroken(RuntimeError):
    """The sandbox failed on every program of many rounds in a row: it is broken, not the code."""


class SandboxSession:
    """One warm pool for a whole training run, opened once and closed at the end.

    ``run`` never raises for a sandbox failure: a pool that breaks (its backend dies,
    Docker restarts) is closed, its unanswered programs come back as ``sandbox_error``,
    and the next round opens a fresh pool. After ``give_up_after`` rounds in a row in
    which nothing could run, :class:`SandboxBroken` stops the training (a checkpoint
    lets it resume once the sandbox is fixed).
    """

    def __init__(self, config: SandboxConfig, give_up_after: int = 10) -> None:
        self.config = config
        self.give_up_after = give_up_after
        self.pool: Any = None
        self.opened = 0
        self.pool_ids: list[str] = []
        """Every pool this session opened (their containers carry this label)."""
        self.failed_rounds = 0

    def __enter__(self) -> SandboxSession:
        self._open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> Any:
        from selfalign.sandbox import open_pool

        pool = open_pool(self.config)
        pool.__enter__()
        self.pool = pool
        self.opened += 1
        self.pool_ids.append(str(getattr(pool, "pool_id", "")))
        return pool

    def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.__exit__(None, None, None)

    def run(self, programs: Iterable[Program]) -> Iterator[ExecResult]:
        from selfalign.sandbox import ExecResult

        progs = list(programs)
        answered: set[str] = set()
        try:
            pool = self.pool if self.pool is not None else self._open()
            for result in pool.run(progs):
                answered.add(result.id)
                yield result
        except Exception as exc:  # a broken pool must not end the training
            logger.error("the sandbox pool failed (%s); a fresh one starts next round", exc)
            self.close()
            for prog in progs:
                if prog.id not in answered:
                    yield ExecResult.error(prog.id, f"the sandbox pool failed: {exc}")
        if progs and not answered:
            self.failed_rounds += 1
            if self.failed_rounds >= self.give_up_after:
                raise SandboxBroken(
                    f"the sandbox ran none of the programs of {self.failed_rounds} rounds in a "
                    "row; check `selfalign sandbox build` and Docker, then run the same command "
                    "again to resume from the last checkpoint"
                )
        else:
            self.failed_rounds = 0


def sandbox_config(base: SandboxConfig | None = None, **overrides: Any) -> SandboxConfig:
    """``base`` (or the defaults) with the overrides that are not ``None``."""
    from selfalign.sandbox import SandboxConfig

    cfg = base or SandboxConfig()
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **given) if given else cfg
