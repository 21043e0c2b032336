"""The arena end to end with the real embedded 135M model in all three roles, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.evaluate.arena_cli import arena_command
from selfalign.evaluate.arena_verdict import VERDICTS


@pytest.mark.slow
def test_the_embedded_model_plays_the_arena(tmp_path: Path) -> None:
    out = tmp_path / "arena"
    # Small budgets: CPU generation runs at about 20 tokens/s.
    args = [
        "--model", "embedded", "--baseline", "embedded", "--judge", "embedded",
        "--device", "cpu", "--limit", "2", "--max-new-tokens", "24",
        "--judge-max-new-tokens", "40", "--conclude-max-new-tokens", "8",
        "--repetition-penalty", "1.2", "--bootstrap-rounds", "200", "--out", str(out),
    ]
    result = CliRunner().invoke(arena_command, args)
    assert result.exit_code == 0, result.output
    assert "arena: embedded vs embedded (judge: embedded)" in result.output
    assert "overall" in result.output and "by category" in result.output

    summary = json.loads((out / "summary.json").read_text())
    assert summary["benchmark"] == "arena" and summary["questions"] == 2
    overall = summary["overall"]
    assert overall["n"] + overall["missing"] == 2
    assert overall["wins"] + overall["ties"] + overall["losses"] == overall["n"]
    if overall["n"]:
        assert overall["score_ci"]["low"] <= overall["score"] <= overall["score_ci"]["high"]
    assert summary["games"]["total"] == 4
    assert summary["generated_tokens"]["model"] > 0 and summary["generated_tokens"]["judge"] > 0

    results = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(results) == 2
    for record in results:
        assert record["model_answer"].strip() and record["baseline_answer"].strip()
        assert [g["model_position"] for g in record["games"]] == ["A", "B"]
        for game in record["games"]:
            assert game["judgment"].strip()
            assert game["verdict"] in (*VERDICTS, None)
            # Unreadable first replies were asked to conclude, once.
            if game["verdict"] is None:
                assert game["conclude_reply"] is not None
        assert record["outcome"] in ("win", "tie", "loss", "missing")
