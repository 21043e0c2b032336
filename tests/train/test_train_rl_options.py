"""GRPO and reward-model options, presets and task rows: no model, no Docker."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.train.cli import section_values, train_group
from selfalign.train.config import PRESETS, GRPOOptions, RewardOptions
from selfalign.train.data import check_task_row, load_training_data

FIXTURE = Path(__file__).parents[1] / "fixtures" / "grpo" / "dataset"


def test_tasks_come_from_the_sft_rows_without_their_answer() -> None:
    data = load_training_data(FIXTURE, "tasks")
    assert data.used == 10 and not data.skipped
    row = data.rows[0]
    assert row["prompt"] == [
        {
            "role": "user",
            "content": "Write a Python function `add(a, b)` that returns the sum of a and b.",
        }
    ]
    assert row["tests"].startswith("assert add(2, 3) == 5") and row["task_id"] == "task-add"
    assert "return a + b" in row["solution"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "missing_tests"),
        (
            {"messages": [{"role": "user", "content": "x"}], "tests": "assert (\n"},
            "tests_do_not_parse",
        ),
        (
            {"messages": [{"role": "assistant", "content": "x"}], "tests": "assert 1"},
            "no_user_turn",
        ),
        (
            {"messages": [{"role": "user", "content": " "}], "tests": "assert 1"},
            "empty_instruction",
        ),
        ({"tests": "assert 1"}, "missing_messages"),
    ],
)
def test_bad_task_rows_are_skipped_with_a_reason(row: dict[str, object], reason: str) -> None:
    assert check_task_row(row) == (None, reason)


def test_grpo_presets_and_overrides() -> None:
    demo = GRPOOptions(data="d", out="o").hyperparameters(world_size=1)
    assert (demo.num_generations, demo.max_completion_length, demo.beta) == (4, 128, 0.0)
    assert demo.to_dict()["num_generations"] == 4
    ref = GRPOOptions(data="d", out="o", preset="reference").hyperparameters(world_size=8)
    preset = PRESETS["grpo"]["reference"]
    assert (ref.learning_rate, ref.beta, ref.num_generations) == (1e-6, 0.04, 16)
    assert ref.gradient_accumulation_steps == preset.effective_batch_size // (16 * 8)
    mine = GRPOOptions(data="d", out="o", num_generations=2, beta=0.1, temperature=0.5)
    hp = mine.hyperparameters(world_size=1)
    assert (hp.num_generations, hp.beta, hp.temperature) == (2, 0.1, 0.5)
    # Sampling settings are GRPO's only: an SFT card does not show them.
    assert "num_generations" not in RewardOptions(data="d", out="o").hyperparameters(1).to_dict()


def test_a_step_must_hold_whole_groups() -> None:
    with pytest.raises(ValueError, match="multiple of --num-generations"):
        GRPOOptions(data="d", out="o", num_generations=3).hyperparameters(world_size=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_generations": 1},
        {"temperature": 0.0},
        {"execution_weight": -1.0},
        {"execution_weight": 0.0, "format_weight": 0.0},
        {"heldout_fraction": 1.0},
        {"sandbox_retries": -1},
        {"vllm_mode": "remote"},
    ],
)
def test_bad_grpo_options_say_what_is_wrong(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GRPOOptions(data="d", out="o", **kwargs)  # type: ignore[arg-type]


def test_reward_options_check_the_source() -> None:
    with pytest.raises(ValueError, match="source"):
        RewardOptions(data="d", out="o", source="humans")
    assert RewardOptions(data="d", out="o").hyperparameters(1).max_steps == 10


def test_config_file_sections_for_reward_and_grpo() -> None:
    values = {"train": {"preset": "demo", "grpo": {"num_generations": 2}, "reward": {"seed": 3}}}
    assert section_values(values, "grpo") == {
        "train.grpo": {"preset": "demo", "num_generations": 2}
    }
    assert section_values(values, "reward") == {"train.reward": {"preset": "demo", "seed": 3}}


def test_commands_are_listed_and_bad_options_fail_cleanly(tmp_path: Path) -> None:
    runner = CliRunner()
    assert {"reward", "grpo"} <= set(train_group.commands)
    out = runner.invoke(
        train_group,
        ["grpo", "--data", str(FIXTURE), "--out", str(tmp_path), "--num-generations", "3"],
    )
    assert out.exit_code == 2 and "num-generations" in out.output
    config = tmp_path / "c.toml"
    config.write_text('[train.grpo]\nnum_generations = "many"\n')
    out = runner.invoke(
        train_group,
        ["grpo", "--config", str(config), "--data", str(FIXTURE), "--out", str(tmp_path)],
    )
    assert out.exit_code == 2, out.output
    assert not (tmp_path / "heldout.jsonl").exists()
