"""`selfalign eval tasks`: held-out tasks answered by the real 135M model, run with their own
tests in the real sandbox, and compared side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.evaluate.cli import eval_group

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "grpo" / "dataset"

pytestmark = [pytest.mark.slow, pytest.mark.docker]


def test_held_out_tasks_pass_rate_and_executability(tmp_path: Path) -> None:
    out = tmp_path / "tasks"
    args = ["tasks", "--data", str(FIXTURE), "--model", "embedded", "--limit", "2"]
    args += ["--max-new-tokens", "48", "--sandbox-workers", "2", "--out", str(out)]
    result = CliRunner().invoke(eval_group, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == "heldout-tasks" and summary["problems"] == 2
    assert 0.0 <= summary["pass_at_k"]["pass@1"] <= summary["executability"] <= 1.0
    assert sum(summary["statuses"].values()) == 2
    shown = CliRunner().invoke(eval_group, ["compare", str(out), str(out)])
    assert shown.exit_code == 0, shown.output
    assert "held-out tasks" in shown.output and "executability" in shown.output
