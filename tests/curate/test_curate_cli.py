"""The execute / select / export commands: options, config sections, errors without tracebacks."""

from __future__ import annotations

from click.testing import CliRunner

from selfalign.curate.cli import execute_command, export_command, select_command


def _flat(text: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(text.split())


def test_execute_takes_its_own_and_the_sandbox_options() -> None:
    result = CliRunner().invoke(execute_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--batch-size", "--cache-dir", "--reuse-verdicts", "--workers", "--timeout-s"):
        assert option in result.output


def test_select_and_export_say_which_stage_to_run_first(tmp_path) -> None:
    run = str(tmp_path / "run")
    result = CliRunner().invoke(select_command, ["--run", run])
    assert result.exit_code == 1 and "selfalign execute" in _flat(result.output)
    result = CliRunner().invoke(export_command, ["--run", run])
    assert result.exit_code == 1 and "selfalign select" in _flat(result.output)


def test_bad_option_values_fail_with_a_fix(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[select]\nminhash_threshold = 1.5\n")
    result = CliRunner().invoke(select_command, ["--run", str(tmp_path), "--config", str(config)])
    assert result.exit_code == 2 and "0.7 is the reference" in _flat(result.output)
    result = CliRunner().invoke(export_command, ["--run", str(tmp_path), "--push-to-hub", "nope"])
    assert result.exit_code == 2 and "user/name" in _flat(result.output)
