"""The Docker backend: one warm container per worker."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess

from ._pool import ProcessPool, _Worker
from .config import SandboxConfig
from .errors import SandboxUnavailable
from .flags import LABEL, docker_run_args
from .image import check_docker, ensure_image

log = logging.getLogger(__name__)


def _runtimes() -> set[str]:
    cp = subprocess.run(
        ["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, timeout=20
    )
    try:
        return set(json.loads(cp.stdout or b"{}"))
    except ValueError:
        return set()


class DockerPool(ProcessPool):
    """Warm containers started by `docker run -i`, the runner as PID 1 in each.

    Crash safety: each container is attached to our process through the docker
    CLI's stdin; when this process dies, the runner reads EOF, exits, and --rm
    removes the container. Every container also carries the labels that
    `selfalign sandbox clean` uses.
    """

    backend = "docker"

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config)
        self.image = ""
        self.runtime: str | None = None

    def _prepare(self) -> None:
        check_docker()
        self.image = ensure_image(self.config.image)
        rt = self.config.runtime
        if rt == "auto":
            rt = "runsc" if "runsc" in _runtimes() else None
        elif rt and rt not in _runtimes():
            raise SandboxUnavailable(
                f"Docker has no runtime {rt!r}: install it (gVisor: "
                "`runsc install` then restart dockerd) or unset runtime"
            )
        self.runtime = rt
        log.info(
            "docker pool %s: %d containers of %s%s",
            self.pool_id,
            self.config.workers,
            self.image,
            f" on {rt}" if rt else "",
        )

    def _launch_argv(self, slot: int, name: str) -> list[str]:
        # A random uid per container: distinct from the runner's (0), and from every
        # other container's, so RLIMIT_NPROC (counted per uid across the host) and
        # kill(-1) by the janitor only ever concern this container's programs.
        prog_uid = 200_000 + secrets.randbelow(1_800_000)
        return docker_run_args(
            self.config,
            image=self.image,
            name=name,
            prog_uid=prog_uid,
            pool_id=self.pool_id,
            owner_pid=os.getpid(),
            runtime=self.runtime,
        )

    def _launch_env(self) -> dict[str, str]:
        # Every job and verdict passes through this `docker run -i` process. With
        # one Go processor it wakes for them at a third of the CPU cost (no idle
        # threads spun up to look for work); it only copies two streams.
        return {**os.environ, "GOMAXPROCS": "1"}

    def _destroy(self, worker: _Worker) -> None:
        subprocess.run(["docker", "rm", "-f", worker.name], capture_output=True, timeout=60)

    def _cleanup_all(self) -> None:
        cp = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={LABEL}.pool={self.pool_id}"],
            capture_output=True,
            timeout=60,
        )
        ids = cp.stdout.decode().split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=120)
