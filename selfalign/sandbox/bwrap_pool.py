"""The bubblewrap backend: the same runner in Linux namespaces, without a Docker daemon."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path

from ._pool import ProcessPool
from .config import SandboxConfig
from .errors import SandboxUnavailable
from .flags import RUNNER_PATH, WORK_DIR, runner_args
from .image import cache_dir, rootfs_key, runner_path

log = logging.getLogger(__name__)


def default_rootfs() -> Path:
    """The cached debootstrap root (from `selfalign sandbox build`), else the host's /."""
    cached = cache_dir() / f"rootfs-{rootfs_key()}"
    if (cached / ".complete").is_file():
        return cached
    return Path("/")


def bwrap_argv(
    config: SandboxConfig, rootfs: Path, runner: Path, prog_uid: int | None, bwrap: str = "bwrap"
) -> list[str]:
    """Every isolation flag of one bubblewrap sandbox, with the reason it is there.

    Differences from Docker, documented in docs/sandbox.md: there is no cgroup, so
    memory and processes are capped by rlimits only (RLIMIT_AS, RLIMIT_NPROC), and
    there is no CPU share.
    """
    privileged = prog_uid is not None
    argv = [bwrap]
    if privileged:
        # As root we keep the host user namespace so the runner can switch each job
        # to its own uid; every other namespace is new.
        argv += [
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
    else:
        # Unprivileged: a user namespace too; programs then share the runner's uid
        # (the runner detects a damaged sandbox and the host replaces it).
        argv += ["--unshare-all"]
    argv += [
        # The sandbox dies with the pool's process.
        "--die-with-parent",
        # The runner is PID 1 of the new PID namespace: it reaps orphans, and when it
        # exits every process of the sandbox dies with it.
        "--as-pid-1",
        # A new session: no access to a controlling terminal (TIOCSTI).
        "--new-session",
        # Read-only root file system: the runner and python cannot be modified.
        "--ro-bind",
        str(rootfs),
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        # The only writable places: size-capped tmpfs, emptied after every job.
        "--perms",
        "1777",
        "--size",
        str(config.tmpfs_mb * 1024 * 1024),
        "--tmpfs",
        WORK_DIR,
        "--perms",
        "1777",
        "--size",
        str(16 * 1024 * 1024),
        "--tmpfs",
        "/tmp",
        "--perms",
        "1777",
        "--size",
        str(16 * 1024 * 1024),
        "--tmpfs",
        "/dev/shm",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/local/bin:/usr/bin:/bin",
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--chdir",
        WORK_DIR,
    ]
    if privileged:
        # All capabilities dropped except switching to the program's user.
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    inside = RUNNER_PATH
    if rootfs == Path("/"):
        inside = str(runner)  # the host root already shows the checkout's runner
    else:
        argv += ["--ro-bind", str(runner), RUNNER_PATH]
    argv += ["python3", "-I", inside, *runner_args(config, prog_uid, sched="nice")]
    return argv


class BwrapPool(ProcessPool):
    backend = "bwrap"

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config)
        self.rootfs = Path("/")
        self.bwrap = "bwrap"

    def _prepare(self) -> None:
        found = shutil.which("bwrap")
        if not found:
            raise SandboxUnavailable(
                "bubblewrap is not installed: `apt-get install bubblewrap` "
                "(or `make setup`), or pass --backend docker"
            )
        self.bwrap = found
        self.rootfs = Path(self.config.rootfs) if self.config.rootfs else default_rootfs()
        if not (self.rootfs / "usr" / "bin" / "python3").exists():
            raise SandboxUnavailable(
                f"no python3 in the bwrap root {self.rootfs}: build one "
                "with `selfalign sandbox build --backend bwrap`"
            )
        if self.rootfs == Path("/"):
            log.warning(
                "bwrap uses the host's / read-only (no cached root file system); "
                "`selfalign sandbox build --backend bwrap` builds a minimal one"
            )

    def _launch_argv(self, slot: int, name: str) -> list[str]:
        prog_uid = 200_000 + secrets.randbelow(1_800_000) if os.geteuid() == 0 else None
        return bwrap_argv(self.config, self.rootfs, runner_path(), prog_uid, self.bwrap)
