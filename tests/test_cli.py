"""The command line: every stage is listed, every stage command takes --run and --config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.cli import cli

STAGE_COMMANDS = [
    "seeds",
    "concepts",
    "tasks",
    "respond",
    "execute",
    "judge",
    "select",
    "pairs",
    "export",
    "generate",
]
GROUPS = {
    "train": ["sft", "dpo", "reward", "grpo"],
    "eval": ["humaneval", "arena", "tasks", "compare"],
    "sandbox": ["build", "run", "clean"],
}


def test_help_lists_every_stage() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in [*STAGE_COMMANDS, *GROUPS, "status"]:
        assert f"  {name} " in result.output, name


@pytest.mark.parametrize("name", STAGE_COMMANDS)
def test_stage_commands_take_run_and_config(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "--run" in result.output and "--config" in result.output


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_groups_list_their_commands(group: str) -> None:
    result = CliRunner().invoke(cli, [group, "--help"])
    assert result.exit_code == 0, result.output
    for command in GROUPS[group]:
        assert command in result.output


def test_unknown_config_key_fails_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[seeds]\nminhash_treshold = 0.5\n")
    result = CliRunner().invoke(
        cli, ["seeds", "--run", str(tmp_path / "run"), "--config", str(config)]
    )
    assert result.exit_code == 2
    assert "seeds.minhash_treshold" in result.output
    assert not (tmp_path / "run" / "seeds").exists()


def test_unknown_config_section_fails_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[sedes]\nlimit = 3\n")
    result = CliRunner().invoke(
        cli, ["seeds", "--run", str(tmp_path / "run"), "--config", str(config)]
    )
    assert result.exit_code == 2
    assert "[sedes]" in result.output


def test_help_is_instant_without_heavy_imports() -> None:
    code = (
        "import sys; from selfalign.cli import cli\n"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'vllm', 'datasets', 'docker')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
