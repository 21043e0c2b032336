"""The `selfalign sandbox run` contract other tools rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def test_run_contract(tmp_path: Path, sandbox_image: str) -> None:
    lines = [
        json.dumps({"id": "ok", "code": "assert 1 + 1 == 2\n"}),
        "this is not json",
        json.dumps({"id": "no-code"}),
        json.dumps({"id": "bad", "code": "assert 1 + 1 == 3\n"}),
        json.dumps([1, 2]),
        "",
        json.dumps({"id": "slow", "code": "while True:\n    pass\n"}),
    ]
    inp = tmp_path / "programs.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "verdicts.jsonl"
    cp = subprocess.run(
        [sys.executable, "-m", "selfalign.sandbox.cli", "run", "--input", str(inp), "--output",
         str(out), "--workers", "2", "--timeout", "1", "--memory-mb", "512"],
        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(verdicts) == len(lines)
    by_id = {v["id"]: v for v in verdicts}
    assert by_id["ok"]["status"] == "pass"
    assert by_id["bad"]["status"] == "fail" and by_id["bad"]["exception"] == "AssertionError"
    assert by_id["slow"]["status"] == "timeout"
    assert by_id["no-code"]["status"] == "sandbox_error" and "code" in by_id["no-code"]["reason"]
    assert by_id["line-2"]["status"] == "sandbox_error" and "JSON" in by_id["line-2"]["reason"]
    assert by_id["line-5"]["status"] == "sandbox_error"
    assert by_id["line-6"]["status"] == "sandbox_error"
    for v in verdicts:
        for key in ("id", "status", "duration_s", "exit_code", "exception", "stdout_tail",
                    "stderr_tail"):
            assert key in v
    assert "pass" in cp.stderr and "sandbox_error" in cp.stderr  # the summary table


def test_run_bad_option_says_how_to_fix(tmp_path: Path) -> None:
    inp = tmp_path / "p.jsonl"
    inp.write_text("")
    cp = subprocess.run([sys.executable, "-m", "selfalign.sandbox.cli", "run", "--input",
                         str(inp), "--output", str(tmp_path / "o.jsonl"), "--workers", "0"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode != 0 and "--workers" in cp.stderr
