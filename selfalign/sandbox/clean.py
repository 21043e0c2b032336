"""Remove sandbox containers left behind (by label)."""

from __future__ import annotations

import logging
import os
import subprocess

from .flags import LABEL

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_containers() -> list[tuple[str, int | None]]:
    """(container id, owner pid) of every container that carries the sandbox label."""
    cp = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={LABEL}=1",
            "--format",
            f'{{{{.ID}}}} {{{{.Label "{LABEL}.owner_pid"}}}}',
        ],
        capture_output=True,
        timeout=60,
    )
    out: list[tuple[str, int | None]] = []
    for line in cp.stdout.decode().splitlines():
        parts = line.split()
        if not parts:
            continue
        owner = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        out.append((parts[0], owner))
    return out


def clean(all_containers: bool = True) -> list[str]:
    """Remove sandbox containers; with ``all_containers=False`` only those whose owning
    process on this host is gone. Returns the removed container ids."""
    victims = [
        cid
        for cid, owner in list_containers()
        if all_containers or owner is None or not _alive(owner)
    ]
    if victims:
        subprocess.run(["docker", "rm", "-f", *victims], capture_output=True, timeout=300)
        log.info("removed %d sandbox containers", len(victims))
    return victims
