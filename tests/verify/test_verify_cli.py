"""`selfalign sandbox run --check-tests`, through the CLI and real Docker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ADD = "def add(a, b):\n    return a + b\n"


@pytest.mark.docker
def test_check_tests_writes_strength_verdicts(tmp_path: Path, sandbox_image: str) -> None:
    lines = [
        json.dumps({"id": "honest", "solution": ADD,
                    "tests": "assert add(1, 2) == 3\nassert add(-2, 2) == 0\n"}),
        json.dumps({"id": "swallowed", "solution": "def add(a, b):\n    return a - b\n",
                    "tests": "try:\n    assert add(1, 2) == 3\nexcept AssertionError:\n"
                             "    pass\n"}),
        json.dumps({"id": "failing", "solution": "def add(a, b):\n    return 0\n",
                    "tests": "assert add(1, 2) == 3\n"}),
        json.dumps({"id": "plain", "code": "assert True\n"}),
        "not json",
    ]
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    cp = subprocess.run(
        [sys.executable, "-m", "selfalign.sandbox.cli", "run", "--input", str(inp), "--output",
         str(out), "--check-tests", "--workers", "2", "--image", sandbox_image],
        capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [v["id"] for v in verdicts] == ["honest", "swallowed", "failing", "plain", "line-5"]
    honest, swallowed, failing, plain, bad = verdicts
    assert honest["status"] == "pass" and honest["strength"] == "strong"
    assert honest["null_status"] == "fails" and honest["mutation_score"] == 1.0
    assert swallowed["status"] == "pass" and swallowed["strength"] == "weak"
    assert swallowed["reason"] == "vacuous_tests"
    assert "weak_tests: null_passes" in " ".join(swallowed["reasons"])
    assert failing["status"] == "fail" and failing["strength"] is None
    assert plain["status"] == "sandbox_error" and "--check-tests" in plain["reason"]
    assert bad["status"] == "sandbox_error" and "JSON" in bad["reason"]
    for v in verdicts[:3]:
        for key in ("duration_s", "exit_code", "stdout_tail", "mutants_killed",
                    "mutants_survived", "findings", "checks"):
            assert key in v
    assert "test strength" in cp.stderr and "vacuous_tests: swallowed" in cp.stderr


def test_strength_options_need_check_tests(tmp_path: Path) -> None:
    inp = tmp_path / "p.jsonl"
    inp.write_text("")
    cp = subprocess.run([sys.executable, "-m", "selfalign.sandbox.cli", "run", "--input",
                         str(inp), "--output", str(tmp_path / "o.jsonl"), "--mutants", "3"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode != 0 and "--check-tests" in cp.stderr
    cp = subprocess.run([sys.executable, "-m", "selfalign.sandbox.cli", "run", "--input",
                         str(inp), "--output", str(tmp_path / "o.jsonl"), "--check-tests",
                         "--min-mutation-score", "2"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode != 0 and "min_mutation_score" in cp.stderr
