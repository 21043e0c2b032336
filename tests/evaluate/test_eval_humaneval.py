"""HumanEval programs and scoring: reference solutions pass, empty ones fail (real sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.evaluate.cli import eval_group
from selfalign.evaluate.humaneval import (
    HumanEvalConfig,
    build_program,
    extract_code,
    load_problems,
    sandbox_executor,
    score,
    trim_completion,
)


def _problem(task: str = "HumanEval/0") -> dict:
    return next(p for p in load_problems() if p["task_id"] == task)


def test_all_problems_load() -> None:
    problems = load_problems()
    assert len(problems) == 164
    assert len(load_problems(limit=20)) == 20
    assert {"prompt", "test", "entry_point", "canonical_solution"} <= set(problems[0])


def test_completion_is_cut_where_the_function_ends() -> None:
    text = "    return 1\n\n\ndef other():\n    pass\n"
    assert trim_completion(text) == "    return 1\n\n"
    assert trim_completion("    return 1\nprint(f())") == "    return 1"


def test_chat_reply_with_the_whole_function_redefines_the_stub() -> None:
    p = _problem()
    reply = (
        "Here it is:\n```python\n"
        + p["prompt"]
        + p["canonical_solution"]
        + "```\nIt loops over pairs."
    )
    code = extract_code(reply)
    assert code.startswith("from typing import List")
    program = build_program(p, reply, "chat")
    assert program.startswith(p["prompt"])
    assert program.count(f"def {p['entry_point']}(") == 2
    assert program.rstrip().endswith(f"check({p['entry_point']})")


def test_chat_reply_with_a_flush_left_body_is_indented() -> None:
    p = _problem("HumanEval/2")  # truncate_number: return number % 1.0
    program = build_program(p, "```\nreturn number % 1.0\n```", "chat")
    assert "\n    return number % 1.0\n" in program


def test_bad_config_says_how_to_fix_it() -> None:
    with pytest.raises(ValueError, match="--temperature"):
        HumanEvalConfig(samples=5, temperature=0.0)
    with pytest.raises(ValueError, match="raise --samples"):
        HumanEvalConfig(samples=2, temperature=0.8, k=[1, 10])


@pytest.mark.docker
def test_reference_solutions_pass_and_empty_ones_fail() -> None:
    from selfalign.sandbox import SandboxConfig

    problems = load_problems()
    canonical = [[p["canonical_solution"], ""] for p in problems]
    execute = sandbox_executor(SandboxConfig(workers=2, timeout_s=10))
    scores = score(problems, canonical, "completion", [1, 2], execute)
    results, overall, statuses = scores.results, scores.pass_at_k, scores.statuses
    by_task = {r.task_id: r for r in results}
    # Sample 0 is the reference solution, sample 1 the empty completion.
    assert all(r.samples[0]["status"] == "pass" for r in results), [
        r.task_id for r in results if r.samples[0]["status"] != "pass"
    ]
    assert all(r.samples[1]["status"] != "pass" for r in results)
    assert overall["pass@1"] == pytest.approx(0.5)
    assert overall["pass@2"] == pytest.approx(1.0)
    assert statuses["pass"] == 164
    assert by_task["HumanEval/0"].pass_at_k["pass@1"] == pytest.approx(0.5)
    # Executability: the reference runs up to its tests and passes them; a docstring-only
    # body (the empty completion) runs too, and fails at the tests' asserts.
    assert all(r.samples[0]["executable"] for r in results)
    assert scores.executability > 0.9

    # The same, one sample each: pass@1 is exactly 1.0 and 0.0.
    ref = score(problems[:40], [[p["canonical_solution"]] for p in problems[:40]],
                "completion", [1], execute)
    empty = score(problems[:40], [[""] for _ in problems[:40]], "completion", [1], execute)
    assert ref.pass_at_k["pass@1"] == 1.0 and ref.executability == 1.0
    assert empty.pass_at_k["pass@1"] == 0.0
    # Code that does not even compile is not executable.
    broken = score(problems[:10], [["    return (\n"] for _ in problems[:10]], "completion",
                   [1], execute)
    assert broken.pass_at_k["pass@1"] == 0.0 and broken.executability == 0.0


@pytest.mark.docker
def test_chat_mode_reference_functions_pass() -> None:
    from selfalign.sandbox import SandboxConfig

    problems = load_problems(limit=20)
    replies = [
        [f"Sure.\n```python\n{p['prompt']}{p['canonical_solution']}```\n"] for p in problems
    ]
    execute = sandbox_executor(SandboxConfig(workers=2, timeout_s=10))
    assert score(problems, replies, "chat", [1], execute).pass_at_k["pass@1"] == 1.0


def _fake_run(path: Path, model: str, passed: dict[str, int]) -> Path:
    path.mkdir(parents=True)
    rate = sum(passed.values()) / len(passed)
    (path / "summary.json").write_text(json.dumps({"model": model, "pass_at_k": {"pass@1": rate}}))
    lines = [json.dumps({"task_id": t, "n": 1, "passed": c}) for t, c in passed.items()]
    (path / "results.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_compare_shows_the_change_and_the_flipped_problems(tmp_path: Path) -> None:
    before = _fake_run(tmp_path / "a", "base", {"t1": 1, "t2": 0, "t3": 0})
    after = _fake_run(tmp_path / "b", "tuned", {"t1": 0, "t2": 1, "t3": 1})
    result = CliRunner().invoke(eval_group, ["compare", str(before), str(after / "summary.json")])
    assert result.exit_code == 0, result.output
    assert "+33.3 pts" in result.output
    assert "fixed by the second: 2" in result.output
    assert "broken by the second: 1" in result.output


@pytest.mark.slow
@pytest.mark.docker
def test_the_embedded_model_end_to_end(tmp_path: Path) -> None:
    # Through the command line, with the [model] and [sandbox] options of the data stages.
    config = tmp_path / "eval.toml"
    config.write_text("[sandbox]\ntimeout_s = 5\n\n[eval.humaneval]\nmax_new_tokens = 32\n")
    out = tmp_path / "out"
    args = ["humaneval", "--model", "embedded", "--mode", "completion", "--limit", "2"]
    args += ["--sandbox-workers", "2", "--config", str(config), "--out", str(out)]
    result = CliRunner().invoke(eval_group, args)
    assert result.exit_code == 0, result.output
    assert "executability" in result.output
    lines = (out / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["task_id"] for line in lines] == ["HumanEval/0", "HumanEval/1"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == 2 and sum(summary["statuses"].values()) == 2
    assert summary["max_new_tokens"] == 32 and summary["mode"] == "completion"
    assert 0.0 <= summary["pass_at_k"]["pass@1"] <= summary["executability"] <= 1.0
    assert summary["generated_tokens"] > 0


def test_a_model_path_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "runs" / "demo" / "model")
    result = CliRunner().invoke(eval_group, ["humaneval", "--model", missing, "--limit", "1"])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "Traceback" not in result.output
