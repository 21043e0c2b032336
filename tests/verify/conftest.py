"""Fixtures of the verification tests: the corpus, the sandbox image and a shared pool."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from selfalign.sandbox import ProcessPool, SandboxConfig, SandboxUnavailable, open_pool

CORPUS = Path(__file__).parent / "corpus"


@dataclass(frozen=True)
class Case:
    """One corpus answer: ``kind`` is ``cheats`` or ``honest``."""

    kind: str
    name: str
    family: str
    why: str
    solution: str
    tests: str

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"


def load_corpus() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*/*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        cases.append(Case(path.parent.name, path.stem, data["family"], data["why"],
                          data["solution"], data["tests"]))
    return cases


@pytest.fixture(scope="session")
def corpus() -> list[Case]:
    return load_corpus()


@pytest.fixture(scope="session")
def sandbox_image() -> str:
    """The current sandbox image, built if missing (fails instead of skipping in CI)."""
    from selfalign.sandbox.image import build_image, check_docker

    try:
        check_docker()
        return build_image()
    except SandboxUnavailable as e:
        if os.environ.get("SELFALIGN_REQUIRE_DOCKER") == "1":
            pytest.fail(f"SELFALIGN_REQUIRE_DOCKER=1 but the Docker sandbox is unavailable: {e}")
        pytest.skip(f"Docker sandbox unavailable: {e}")
        raise


@pytest.fixture(scope="session")
def docker_pool(sandbox_image: str) -> Iterator[ProcessPool]:
    with open_pool(SandboxConfig(workers=2, timeout_s=10, image=sandbox_image)) as pool:
        yield pool
