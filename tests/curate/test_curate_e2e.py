"""execute -> select -> export on a hand-written run, with the real Docker sandbox."""

from __future__ import annotations

import json
import re

import pytest

from selfalign.curate.config import ExecuteConfig, ExportConfig, PairsConfig, SelectConfig
from selfalign.curate.export import export_paths
from selfalign.pipeline import funnel, run_named
from selfalign.records import stable_id
from selfalign.sandbox import SandboxConfig

pytestmark = pytest.mark.docker


def test_execute_select_export(hand_run, sandbox_image, tmp_path) -> None:
    run = hand_run.run
    sandbox = SandboxConfig(workers=2, timeout_s=3, image=sandbox_image)
    shared = tmp_path / "verdict-cache"
    stats = run_named(
        run, "execute", {"execute": ExecuteConfig(cache_dir=str(shared)), "sandbox": sandbox}
    )

    verdicts = {v["attempt_id"]: v for v in run.stage("verdicts").read()}
    status = {name: verdicts[a.id]["status"] for name, a in hand_run.attempts.items()}
    assert status == {
        "add_pass": "pass",
        "add_fail": "fail",
        "add_same": "pass",
        "never_fail": "fail",
        "slow_timeout": "timeout",
        "slow_pass": "pass",  # its __main__ block reads stdin: removed by the assembly rule
        "vacuous_pass": "pass",
        "dup_pass": "pass",
        "contam_pass": "pass",
        "unparsed_pass": "pass",
        "unit_pass": "pass",  # unittest.main() made non-exiting
        "unit_fail": "fail",
        "unit_pytest_fail": "fail",  # the uncalled test function was called
    }
    # The identical program of add_same ran once.
    same = verdicts[hand_run.attempt_id("add_same")]
    assert same["program_hash"] == verdicts[hand_run.attempt_id("add_pass")]["program_hash"]
    assert stats.metrics["executed"] == len(hand_run.attempts) - 1
    assert stats.metrics["cache_hits"] == 1
    assert stats.metrics["attempts"] == 13 and stats.metrics["passed"] == 8
    # Executable: passed, or failed on an assert (the timeout is not).
    assert stats.metrics["executable"] == 12
    assert stats.metrics["by_category"]["program"]["attempts"] == 2
    assert stats.metrics["by_parse_outcome"]["parse_error"]["passed"] == 1

    # A forced re-run takes every verdict from the cache: nothing runs, no sandbox starts.
    # (Same limits, another image name: a cache miss would fail to start the sandbox.)
    no_sandbox = SandboxConfig(workers=2, timeout_s=3, image="no-such-image:never")
    again = run_named(
        run, "execute", {"execute": ExecuteConfig(), "sandbox": no_sandbox}, force=True
    )
    assert again.metrics["executed"] == 0 and again.metrics["cache_hits"] == 13
    # The shared cache serves a new run that has no verdicts of its own.
    run.stage("verdicts").reset()
    third = run_named(
        run, "execute", {"execute": ExecuteConfig(cache_dir=str(shared)), "sandbox": no_sandbox}
    )
    assert third.metrics["executed"] == 0

    run_named(run, "select", {"select": SelectConfig()})
    examples = list(run.stage("examples").read())
    assert sorted(e["task_id"] for e in examples) == sorted(
        hand_run.task_id(n) for n in ("add", "slow", "unit")
    )
    rejected = {r["id"]: r["reason"] for r in run.stage("examples").read_rejected()}
    assert rejected == {
        hand_run.task_id("never"): "no_passing_attempt",
        hand_run.task_id("vacuous"): "vacuous_tests",
        hand_run.task_id("dup"): "duplicate_instruction",
        hand_run.task_id("contam"): "contaminated",
        hand_run.task_id("unparsed"): "parse_error",
    }
    add = next(e for e in examples if e["task_id"] == hand_run.task_id("add"))
    assert add["attempt_id"] in (hand_run.attempt_id("add_pass"), hand_run.attempt_id("add_same"))
    assert add["pass_count"] == 2 and add["attempt_count"] == 3
    execution_only = {"pairs": PairsConfig(sources=["execution"])}
    assert run_named(run, "pairs", execution_only).written == 3

    pairs = {p["task_id"]: p for p in run.stage("pairs").read()}
    assert set(pairs) == {hand_run.task_id(n) for n in ("add", "slow", "unit")}
    assert pairs[hand_run.task_id("add")]["rejected_attempt_id"] == hand_run.attempt_id("add_fail")
    slow = pairs[hand_run.task_id("slow")]
    assert slow["chosen_attempt_id"] == hand_run.attempt_id("slow_pass")
    assert slow["rejected_status"] == "timeout"
    assert slow["rejected_verdict"]["status"] == "timeout"
    assert slow["chosen_verdict"]["status"] == "pass"
    unit = pairs[hand_run.task_id("unit")]
    assert unit["rejected_attempt_id"] in (
        hand_run.attempt_id("unit_fail"),
        hand_run.attempt_id("unit_pytest_fail"),
    )
    assert unit["id"] == stable_id("pair", unit["chosen_attempt_id"], unit["rejected_attempt_id"])

    exported = run_named(run, "export", {"export": ExportConfig()})
    paths = export_paths(run.path)
    assert paths.root == run.path / "dataset" and exported.complete
    # RUN/dataset holds what one pushes to the Hub, nothing else.
    assert sorted(p.name for p in paths.root.iterdir()) == [
        "README.md",
        "pairs.jsonl",
        "pairs.parquet",
        "plots",
        "sft.jsonl",
        "sft.parquet",
    ]
    sft_lines = [json.loads(x) for x in paths.sft_jsonl.read_text().splitlines()]
    assert sorted(r["id"] for r in sft_lines) == sorted(e["id"] for e in examples)
    first = sft_lines[0]
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    pair_lines = [json.loads(x) for x in paths.pairs_jsonl.read_text().splitlines()]
    assert sorted(p["id"] for p in pair_lines) == sorted(p["id"] for p in pairs.values())
    assert pair_lines[0]["prompt"][0]["role"] == "user"
    assert pair_lines[0]["chosen"][0]["role"] == "assistant"

    from datasets import load_dataset

    cache = str(tmp_path / "hf-cache")  # not the user's cache: earlier exports may be in it
    loaded = load_dataset(str(paths.root), "pairs", split="train", cache_dir=cache)
    assert sorted(loaded["id"]) == sorted(p["id"] for p in pair_lines)
    assert load_dataset(str(paths.root), "sft", split="train", cache_dir=cache).num_rows == 3
    for name in ("funnel", "pass_rate", "response_length"):
        assert (paths.plots / f"{name}.png").read_bytes()[:4] == b"\x89PNG"

    # The card's numbers are the stats files' numbers: the export's summary, and each
    # stage's own stats.json for its funnel row (each stage once, in pipeline order).
    stats_file = json.loads((run.path / "export" / "stats.json").read_text())["metrics"]
    card = paths.card.read_text()
    assert "size_categories:\n- n<1K" in card and "license: other" in card
    assert f"| sft | {stats_file['sft_rows']} |" in card
    assert f"| pairs | {stats_file['pairs_rows']} |" in card
    stages = [row["stage"] for row in stats_file["funnel"]]
    assert stages == ["verdicts", "examples", "pairs"]  # the hand run wrote no stats before
    assert [r.to_dict() for r in funnel(run)][: len(stages)] == stats_file["funnel"]
    for row in stats_file["funnel"]:
        saved = json.loads((run.path / row["stage"] / "stats.json").read_text())
        assert (row["read"], row["written"]) == (saved["read"], saved["written"])
        assert row["dropped"] == sum(saved["dropped"].values())
        line = (
            f"| {row['stage']} | {row['unit_in']} | {row['read']} | {row['dropped']} | "
            f"{row['unit_out']} | {row['written']} |"
        )
        assert card.count(line) == 1, line
    # What the assistant turn holds is counted in the data (these answers hold their tests).
    assert "**tests included**" in card
    for reason, count in stats_file["selection"]["removed"].items():
        assert f"| {reason} | {count} |" in card
    execution = stats_file["execution"]
    rate = re.search(r"pass rate ([0-9.]+)%", card)
    assert rate and float(rate.group(1)) == round(100 * execution["pass_rate"], 1)
    assert f"passed: {execution['passed']} " in card
    for name, group in execution["by_category"].items():
        assert f"| {name} | {group['attempts']} | {group['passed']} |" in card
    assert stats_file["execution"]["attempts"] == 13
    assert stats_file["selection"]["dedup_total"] == 1
    assert stats_file["selection"]["decontamination_total"] == 1
