"""Loading and checking training data, presets and the config file: no model needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfalign.config import ConfigError
from selfalign.train.cli import section_values
from selfalign.train.config import DPOOptions, SFTOptions
from selfalign.train.data import DataError, find_source, load_training_data


def test_dataset_directory_prefers_the_jsonl_and_skips_bad_rows(dataset_dir: Path) -> None:
    data = load_training_data(dataset_dir, "sft")
    assert data.source.endswith("sft.jsonl")
    assert data.read == 18 and data.used == 16
    assert dict(data.skipped) == {"last_turn_not_assistant": 1, "missing_messages": 1}
    assert {r.id for r in data.rejections} == {"bad-no-answer", "bad-missing"}
    assert [m["role"] for m in data.rows[0]["messages"]] == ["user", "assistant"]
    assert set(data.rows[0]) == {"messages"}  # metadata columns are not trained on


def test_run_directory_and_save_to_disk_copy(dataset_dir: Path, tmp_path: Path) -> None:
    assert find_source(dataset_dir.parent, "pairs") == dataset_dir / "pairs.jsonl"
    pairs = load_training_data(dataset_dir / "hf", "pairs")
    assert pairs.used == 8 and not pairs.skipped
    assert set(pairs.rows[0]) == {"prompt", "chosen", "rejected"}
    with pytest.raises(DataError, match="run `selfalign export` first"):
        find_source(tmp_path, "sft")


def test_bad_pairs_are_counted_by_reason(tmp_path: Path) -> None:
    good = {"prompt": "Q", "chosen": "A", "rejected": "B"}
    rows = [good, {**good, "rejected": "A"}, {"prompt": "Q", "chosen": "A"}, {**good, "chosen": ""}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    data = load_training_data(path, "pairs")
    assert data.used == 1
    assert data.rows[0]["prompt"] == [{"role": "user", "content": "Q"}]
    assert dict(data.skipped) == {
        "chosen_equals_rejected": 1,
        "missing_rejected": 1,
        "empty_answer": 1,
        "corrupt_line": 1,
    }


def test_reference_preset_is_the_paper_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    hp = SFTOptions(preset="reference").hyperparameters(world_size=1)
    assert (hp.optimizer, hp.learning_rate, hp.epochs, hp.max_steps) == ("adafactor", 1e-5, 4.0, -1)
    assert hp.effective_batch_size == 64
    assert hp.per_device_batch_size * hp.gradient_accumulation_steps == 64
    assert (hp.warmup_ratio, hp.lr_scheduler, hp.max_length, hp.dropout) == (
        0.05,
        "linear",
        1280,
        0.0,
    )
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert SFTOptions(preset="reference").hyperparameters().gradient_accumulation_steps == 2
    with pytest.raises(ValueError, match="effective batch size 64 is not a multiple"):
        SFTOptions(preset="reference", batch_size=6).hyperparameters(world_size=1)


def test_options_override_the_preset() -> None:
    hp = DPOOptions(preset="demo", learning_rate=1e-4, beta=0.3, max_steps=3).hyperparameters(1)
    assert (hp.learning_rate, hp.beta, hp.max_steps) == (1e-4, 0.3, 3)
    with pytest.raises(ValueError, match="pass --data"):
        SFTOptions(out="x").check_paths()


def test_config_file_sections_merge() -> None:
    values = section_values(
        {"train": {"preset": "reference", "lora": True, "sft": {"lora": False, "max_steps": 5}}},
        "sft",
    )
    assert values == {"train.sft": {"preset": "reference", "lora": False, "max_steps": 5}}
    with pytest.raises(ConfigError):
        section_values({"train": {"dpo": 3}}, "dpo")


def test_cli_reports_a_missing_data_set_without_a_traceback(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from selfalign.train.cli import train_group

    result = CliRunner().invoke(
        train_group, ["sft", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "does not exist; pass --data" in " ".join(result.output.split())  # rich wraps lines
    args = ["dpo", "--data", "x", "--out", "o", "--preset", "big"]
    result = CliRunner().invoke(train_group, args)
    assert result.exit_code == 2 and "big" in result.output


def test_module_entry_point_for_accelerate_launch() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "selfalign.train.sft", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "--preset" in done.stdout and "--lora / --no-lora" in done.stdout


def test_run_resolves_to_the_dataset_folder(tmp_path: Path) -> None:
    """`--data RUN` and `--data RUN/dataset` find what `selfalign export` wrote in RUN/dataset/."""
    dataset = tmp_path / "run" / "dataset"
    dataset.mkdir(parents=True)
    (dataset / "README.md").write_text("---\n---\n")
    (dataset / "sft.jsonl").write_text("")
    (dataset / "pairs.jsonl").write_text("")
    assert find_source(dataset, "sft") == dataset / "sft.jsonl"
    assert find_source(tmp_path / "run", "pairs") == dataset / "pairs.jsonl"
    assert find_source(tmp_path / "run", "tasks") == dataset / "sft.jsonl"


def test_run_dataset_resolves_to_an_older_export_folder(tmp_path: Path) -> None:
    """Exports written before the layout change (RUN/dataset/export/) are still found."""
    export = tmp_path / "run" / "dataset" / "export"
    export.mkdir(parents=True)
    (export / "sft.jsonl").write_text("")
    (export / "pairs.jsonl").write_text("")
    assert find_source(tmp_path / "run" / "dataset", "sft") == export / "sft.jsonl"
    assert find_source(tmp_path / "run", "pairs") == export / "pairs.jsonl"
