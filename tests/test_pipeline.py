"""The pipeline contract, on a toy pipeline declared here: a stage is one `Stage` value in a
list, and its command, resume, the funnel and `status` all follow from that list."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from selfalign.cli import make_cli
from selfalign.pipeline import PIPELINE, funnel, sections, stage_names
from selfalign.records import stable_id
from selfalign.stage import (
    BatchResult,
    Section,
    Stage,
    StageContext,
    StageInput,
    read_stage_records,
)
from selfalign.store import Rejection, RunDir

CALLS = {"squares": 0}


@dataclass
class NumbersConfig:
    """Options of the toy source stage."""

    n: int = field(default=20, metadata={"help": "How many numbers."})
    batch_size: int = field(default=4, metadata={"help": "Numbers per batch."})


@dataclass
class SquaresConfig:
    """Options of the toy squaring stage."""

    batch_size: int = field(default=3, metadata={"help": "Numbers per batch."})
    fail_on_batch: int = field(default=0, metadata={"help": "Raise in this batch (0: never)."})


def _numbers(ctx: StageContext) -> StageInput:
    n = ctx.config("numbers").n
    items = [{"id": f"i{i:03d}", "v": i} for i in range(n)]
    return StageInput(items=items, item_id=lambda r: r["id"])


def _number_process(ctx: StageContext) -> Any:
    def process(batch: list[dict[str, Any]]) -> BatchResult:
        result = BatchResult()
        for item in batch:
            if item["v"] % 5 == 0:
                result.rejections.append(Rejection(id=item["id"], reason="multiple_of_5"))
            else:
                row = {"id": f"n{item['v']}", "parent_id": item["id"], "v": item["v"]}
                result.outputs.append(row)
        return result

    return process


def _square_process(ctx: StageContext) -> Any:
    fail_on = ctx.config("squares").fail_on_batch
    seen = {"batches": 0}

    def process(batch: list[dict[str, Any]]) -> BatchResult:
        seen["batches"] += 1
        CALLS["squares"] += 1
        if fail_on and seen["batches"] == fail_on:
            raise RuntimeError("the toy stage fails on purpose")
        outputs = [
            {"id": stable_id("sq", r["id"]), "parent_id": r["id"], "sq": r["v"] ** 2}
            for r in batch
            if r["v"] % 3
        ]
        rejections = [
            Rejection(id=r["id"], reason="multiple_of_3") for r in batch if not r["v"] % 3
        ]
        metrics = {"squared": float(len(outputs))}
        return BatchResult(outputs=outputs, rejections=rejections, metrics=metrics)

    return process


NUMBERS = Stage(
    name="numbers",
    command="numbers",
    summary="count from zero, dropping multiples of five",
    section=Section("numbers", NumbersConfig),
    inputs=(),
    record=None,
    read=_numbers,
    processor=_number_process,
    units=("integers", "numbers"),
    in_generate=False,
)
SQUARES = Stage(
    name="squares",
    command="square",
    summary="square each number, dropping multiples of three",
    section=Section("squares", SquaresConfig),
    inputs=("numbers",),
    record=None,
    read=lambda ctx: read_stage_records(ctx, "numbers"),
    processor=_square_process,
    units=("numbers", "squares"),
)
TOY_PIPELINE = [NUMBERS, SQUARES]


def _invoke(cli: Any, *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def test_a_toy_stage_gets_its_command_resume_funnel_and_status(tmp_path: Path) -> None:
    cli = make_cli(TOY_PIPELINE)
    run = str(tmp_path / "run")
    assert {"numbers", "square", "generate", "status"} <= set(cli.commands)  # type: ignore[attr-defined]
    assert "--fail-on-batch" in _invoke(cli, "square", "--help").output

    # Its input is missing: one line that names the command to run, exit 2, no traceback.
    missing = _invoke(cli, "square", "--run", run)
    assert missing.exit_code == 2
    assert f"selfalign numbers --run {run}" in missing.output
    assert "Traceback" not in missing.output

    assert _invoke(cli, "numbers", "--run", run, "--n", "30").exit_code == 0
    # A config file's sections come from the pipeline: [squares] is known, [sqares] is not.
    config = tmp_path / "toy.toml"
    config.write_text("[squares]\nfail_on_batch = 3\n")
    failed = _invoke(cli, "generate", "--run", run, "--config", str(config))
    assert isinstance(failed.exception, RuntimeError)
    store = RunDir(run).stage("squares")
    assert not store.is_complete()
    done = len(list(store.read()))
    assert done > 0
    CALLS["squares"] = 0
    again = _invoke(cli, "generate", "--run", run)
    assert again.exit_code == 0, again.output
    numbers = [r for r in RunDir(run).stage("numbers").read()]
    assert len(numbers) == 24  # 30 minus the six multiples of five
    squares = list(store.read())
    parents = [r["parent_id"] for r in squares]
    assert len(parents) == len(set(parents))  # every id exactly once
    expected = {r["id"] for r in numbers if r["v"] % 3}
    assert set(parents) == expected
    assert CALLS["squares"] == -(-len(numbers) // 3) - 2  # only the batches not yet done ran
    bad = tmp_path / "bad.toml"
    bad.write_text("[sqares]\nbatch_size = 2\n")
    assert "[sqares]" in _invoke(cli, "square", "--run", run, "--config", str(bad)).output

    rows = funnel(RunDir(run), TOY_PIPELINE)
    assert [r.stage for r in rows] == ["numbers", "squares"]
    for row in rows:
        saved = json.loads((Path(run) / row.stage / "stats.json").read_text())
        assert (row.read, row.written, row.dropped) == (
            saved["read"],
            saved["written"],
            sum(saved["dropped"].values()),
        )
    assert (rows[1].unit_in, rows[1].unit_out) == ("numbers", "squares")
    status = _invoke(cli, "status", "--run", run)
    assert status.exit_code == 0
    for row in rows:
        line = next(ln for ln in status.output.splitlines() if ln.strip("│ ").startswith(row.stage))
        assert str(row.read) in line and str(row.written) in line and row.unit_out in line


def test_the_real_pipeline_derives_folders_and_sections() -> None:
    assert stage_names() == [
        "seeds",
        "concepts",
        "tasks",
        "attempts",
        "verdicts",
        "judgments",
        "examples",
        "pairs",
        "export",
    ]
    known = sections()
    names = ("seeds", "model", "concepts", "sandbox", "execute", "judge", "judge.model")
    for name in (*names, "select", "pairs", "export"):
        assert known[name] is not None, name
    assert len({s.command for s in PIPELINE}) == len(PIPELINE)
    # Every input is an earlier stage.
    for index, stage in enumerate(PIPELINE):
        for name in (*stage.inputs, *stage.optional_inputs):
            assert name in stage_names()[:index], (stage.name, name)


@pytest.mark.parametrize("stage", PIPELINE, ids=lambda s: s.name)
def test_every_stage_command_has_its_sections_options(stage: Stage) -> None:
    cli = make_cli(PIPELINE)
    result = CliRunner().invoke(cli, [stage.command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--run" in result.output and "--config" in result.output
    assert f"RUN/{stage.name}" in result.output
