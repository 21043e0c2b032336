"""The records a sandbox consumes and produces."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Status = Literal["pass", "fail", "timeout", "memory", "output_limit", "sandbox_error"]
STATUSES: tuple[Status, ...] = (
    "pass",
    "fail",
    "timeout",
    "memory",
    "output_limit",
    "sandbox_error",
)


def is_executable(status: str, exception: str | None) -> bool:
    """The program ran without error up to its checks: it passed, or an assert failed.

    The RLAIF paper's *executability rate*: code that runs, whether or not its answer
    is right.
    """
    return status == "pass" or (status == "fail" and exception == "AssertionError")


@dataclass(frozen=True)
class Program:
    """One complete Python program, run as ``__main__`` (solution + tests, for example)."""

    id: str
    code: str


@dataclass
class ExecResult:
    """The verdict on one program.

    ``status`` is one of: ``pass`` (ran to its end and exited 0), ``fail`` (an
    exception, a non-zero exit, an exit before the end, a signal), ``timeout``
    (wall-clock or CPU limit), ``memory`` (MemoryError or killed by the OOM killer),
    ``output_limit`` (too much stdout+stderr) or ``sandbox_error`` (the sandbox could
    not run it; ``reason`` says why).
    """

    id: str
    status: Status
    duration_s: float = 0.0
    exit_code: int | None = None
    exception: str | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    reason: str | None = None
    attempts: int = 1

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExecResult:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        if kwargs.get("status") not in STATUSES:
            raise ValueError(
                f"unknown status {kwargs.get('status')!r}; expected one of {', '.join(STATUSES)}"
            )
        return cls(**kwargs)

    @classmethod
    def error(cls, id: str, reason: str, attempts: int = 0) -> ExecResult:
        return cls(
            id=id,
            status="sandbox_error",
            exception="SandboxError",
            reason=reason,
            attempts=attempts,
        )
