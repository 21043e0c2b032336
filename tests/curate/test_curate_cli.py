"""The execute / select / export commands: options, config sections, errors without tracebacks."""

from __future__ import annotations

from click.testing import CliRunner

from selfalign.cli import cli


def _flat(text: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(text.split())


def test_execute_takes_its_own_and_the_sandbox_options() -> None:
    result = CliRunner().invoke(cli, ["execute", "--help"])
    assert result.exit_code == 0
    for option in ("--batch-size", "--cache-dir", "--reuse-verdicts", "--workers", "--timeout-s"):
        assert option in result.output


def test_select_and_export_say_which_stage_to_run_first(tmp_path) -> None:
    run = str(tmp_path / "run")
    for command, first in (
        ("execute", "respond"),
        ("select", "respond"),
        ("pairs", "select"),
        ("export", "select"),
    ):
        result = CliRunner().invoke(cli, [command, "--run", run])
        assert result.exit_code == 2, result.output
        assert f"run `selfalign {first} --run {run}` first" in _flat(result.output)
        assert "Traceback" not in result.output


def test_bad_option_values_fail_with_a_fix(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[select]\nminhash_threshold = 1.5\n")
    result = CliRunner().invoke(
        cli, ["select", "--run", str(tmp_path), "--config", str(config)]
    )
    assert result.exit_code == 2 and "0.7 is the reference" in _flat(result.output)
    result = CliRunner().invoke(cli, ["export", "--run", str(tmp_path), "--push-to-hub", "nope"])
    assert result.exit_code == 2 and "user/name" in _flat(result.output)


def test_library_progress_bars_stay_out_of_a_log(tmp_path) -> None:
    """datasets' tqdm bars ("Creating parquet from Arrow format") are carriage-return noise
    in a non-interactive log: the CLI quiets them; its own output stays."""
    import subprocess
    import sys

    from selfalign.records import Example
    from selfalign.store import RunDir

    run = RunDir(tmp_path / "run")
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    for stage, rows in (
        ("examples", [Example(id="e1", parent_id="t1", messages=messages)]),
        ("pairs", []),
    ):
        store = run.stage(stage)
        store.dir.mkdir(parents=True)
        store.commit_batch([r.to_dict() for r in rows], 0)
        store.compact()
        store.mark_success()
    done = subprocess.run(
        [sys.executable, "-m", "selfalign", "export", "--run", str(run.path), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "exported 1 examples and 0 pairs" in done.stderr
    assert "\r" not in done.stderr and "Creating parquet" not in done.stderr
