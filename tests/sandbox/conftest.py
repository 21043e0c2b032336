"""Fixtures of the sandbox tests: the image (built once per session) and pools."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from selfalign.sandbox import ProcessPool, SandboxConfig, SandboxUnavailable, open_pool


def _unavailable(reason: str) -> None:
    if os.environ.get("SELFALIGN_REQUIRE_DOCKER") == "1":
        pytest.fail(f"SELFALIGN_REQUIRE_DOCKER=1 but the Docker sandbox is unavailable: {reason}")
    pytest.skip(f"Docker sandbox unavailable: {reason}")


@pytest.fixture(scope="session")
def sandbox_image() -> str:
    """The current sandbox image, built if missing (fails instead of skipping in CI)."""
    from selfalign.sandbox.image import build_image, check_docker

    try:
        check_docker()
        return build_image()
    except SandboxUnavailable as e:
        _unavailable(str(e))
        raise  # unreachable: _unavailable always raises


@pytest.fixture(scope="session")
def docker_pool(sandbox_image: str) -> Iterator[ProcessPool]:
    """A two-container pool shared by the correctness tests."""
    with open_pool(SandboxConfig(workers=2, timeout_s=5, image=sandbox_image)) as pool:
        yield pool


def pool_containers(pool_id: str) -> list[str]:
    cp = subprocess.run(["docker", "ps", "-aq", "--filter",
                         f"label=selfalign.sandbox.pool={pool_id}"],
                        capture_output=True, text=True, timeout=60)
    return cp.stdout.split()


def wait_no_containers(pool_id: str, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    left = pool_containers(pool_id)
    while left and time.monotonic() < deadline:
        time.sleep(0.25)
        left = pool_containers(pool_id)
    return left


@pytest.fixture(scope="session")
def bwrap_ok() -> bool:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    cp = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net",
                         "true"], capture_output=True, timeout=30)
    if cp.returncode != 0:
        pytest.skip(f"bwrap cannot create namespaces here: {cp.stderr.decode()[:200]}")
    return True
