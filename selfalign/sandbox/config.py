"""Configuration of a sandbox pool."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .backends import BACKEND_NAMES


@dataclass
class SandboxConfig:
    """Limits and resources of one sandbox pool.

    Every limit applies per program (per job), except ``memory_mb`` and
    ``pids_limit``, which also cap each container as a whole, and ``cpus``, which
    weighs each container against the others.
    """

    backend: str = field(
        default="docker",
        metadata={
            "help": "Where programs run: 'docker' (a warm container pool) or 'bwrap' "
            "(bubblewrap namespaces, for machines without a Docker daemon).",
            "choices": BACKEND_NAMES,
        },
    )
    workers: int = field(
        default_factory=lambda: os.cpu_count() or 1,
        metadata={"help": "Number of sandboxes run in parallel (default: one per CPU core)."},
    )
    timeout_s: float = field(
        default=10.0,
        metadata={
            "help": "Wall-clock limit per program, in seconds; the whole process group "
            "is killed when it is reached."
        },
    )
    memory_mb: int = field(
        default=1024,
        metadata={
            "help": "Memory per program (address-space rlimit) and per container "
            "(memory = memory+swap limit), in MiB."
        },
    )
    output_limit_bytes: int = field(
        default=1 << 20,
        metadata={
            "help": "Maximum stdout+stderr a program may write; beyond it the program "
            "is killed with status 'output_limit'."
        },
    )
    tail_bytes: int = field(
        default=4096,
        metadata={"help": "How many trailing bytes of stdout and of stderr each verdict keeps."},
    )
    pids_limit: int = field(
        default=256,
        metadata={"help": "Maximum number of processes per container (fork bombs stop here)."},
    )
    cpus: float = field(
        default=1.0,
        metadata={
            "help": "CPU weight of each container, in CPUs (docker --cpu-shares 1024 x cpus): "
            "busy containers share the CPUs in this proportion. Not a hard cap: a CPU "
            "quota lets a fork bomb starve the runner (docs/sandbox.md)."
        },
    )
    tmpfs_mb: int = field(
        default=64,
        metadata={"help": "Size of each sandbox's writable work directory (tmpfs), in MiB."},
    )
    file_size_mb: int = field(
        default=16,
        metadata={"help": "Largest file a program may write (RLIMIT_FSIZE), in MiB."},
    )
    open_files: int = field(
        default=256,
        metadata={"help": "Maximum open file descriptors per program (RLIMIT_NOFILE)."},
    )
    image: str | None = field(
        default=None,
        metadata={
            "help": "Docker image to run; default: the image built from sandbox/ "
            "(selfalign-sandbox:<hash of sandbox/>), built if missing."
        },
    )
    runtime: str | None = field(
        default=None,
        metadata={
            "help": "OCI runtime for docker: None for the daemon default (runc), "
            "'runsc' for gVisor, or 'auto' to use runsc when it is installed."
        },
    )
    rootfs: str | None = field(
        default=None,
        metadata={
            "help": "bwrap backend: root file system to bind read-only; default: the "
            "cached debootstrap root built by `selfalign sandbox build`, else /."
        },
    )
    pipeline_depth: int = field(
        default=32,
        metadata={
            "help": "Jobs queued per sandbox: it never waits for the host between jobs, and "
            "up to half of them send their verdicts in one message through docker attach "
            "(1 or 2: one verdict per message)."
        },
    )
    start_timeout_s: float = field(
        default=60.0,
        metadata={"help": "How long a new sandbox may take to report ready, in seconds."},
    )

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_NAMES:
            raise ValueError(
                f"backend must be one of {', '.join(BACKEND_NAMES)}, got {self.backend!r}; "
                "pass e.g. --backend docker"
            )
        checks: list[tuple[str, bool, str]] = [
            ("workers", self.workers >= 1, "use at least 1 worker (e.g. --workers 2)"),
            ("timeout_s", self.timeout_s > 0, "use a positive timeout (e.g. --timeout 10)"),
            (
                "memory_mb",
                self.memory_mb >= 64,
                "Python needs at least 64 MiB to start; use e.g. --memory-mb 1024",
            ),
            (
                "output_limit_bytes",
                self.output_limit_bytes >= 1024,
                "allow at least 1024 bytes of output",
            ),
            ("tail_bytes", self.tail_bytes >= 0, "tail_bytes cannot be negative"),
            (
                "pids_limit",
                self.pids_limit >= 16,
                "the runner needs a few processes of its own; use pids_limit >= 16",
            ),
            ("cpus", self.cpus > 0, "use a positive CPU share, e.g. cpus=1.0"),
            ("tmpfs_mb", self.tmpfs_mb >= 1, "use tmpfs_mb >= 1"),
            ("file_size_mb", self.file_size_mb >= 1, "use file_size_mb >= 1"),
            (
                "open_files",
                self.open_files >= 16,
                "Python needs a few descriptors; use open_files >= 16",
            ),
            ("pipeline_depth", self.pipeline_depth >= 1, "use pipeline_depth >= 1"),
            ("start_timeout_s", self.start_timeout_s > 0, "use a positive start_timeout_s"),
        ]
        for name, ok, fix in checks:
            if not ok:
                raise ValueError(f"invalid {name}={getattr(self, name)!r}: {fix}")
        if self.runtime not in (None, "auto") and not self.runtime.strip():
            raise ValueError("runtime must be None, 'auto' or a runtime name such as 'runsc'")
