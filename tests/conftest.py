"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfalign.store import RunDir


@pytest.fixture
def run_dir(tmp_path: Path) -> RunDir:
    """An empty run directory."""
    return RunDir(tmp_path / "run")
