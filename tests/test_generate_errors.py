"""`selfalign generate` fails the way each stage's own command does: one line that says what
to do, no traceback, for user errors (missing input, missing model, no sandbox)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.cli import cli
from selfalign.records import Attempt, Concepts, Seed, Task
from selfalign.store import RunDir


def _complete(run: RunDir, stage: str, records: list) -> None:
    store = run.stage(stage)
    store.dir.mkdir(parents=True, exist_ok=True)
    store.commit_batch([r.to_dict() for r in records], 0)
    store.compact()
    store.mark_success()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _generate(run: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["generate", "--run", str(run), *extra])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, _flat(result.output)


def test_missing_input(tmp_path: Path) -> None:
    code, out = _generate(tmp_path / "run")
    assert code == 2
    assert f"run `selfalign seeds --run {tmp_path / 'run'}` first" in out


def test_missing_model(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    _complete(run, "seeds", [Seed(id="s1", parent_id=None, code="def f():\n    return 1\n")])
    code, out = _generate(run.path, "--model", str(tmp_path / "no" / "such" / "model"))
    assert code == 2 and "does not exist" in out


@pytest.mark.docker
def test_sandbox_that_cannot_start(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    _complete(run, "seeds", [Seed(id="s1", parent_id=None, code="def f():\n    return 1\n")])
    _complete(run, "concepts", [Concepts(id="c1", parent_id="s1", concepts=["x"])])
    _complete(run, "tasks", [Task(id="t1", parent_id="c1", instruction="Write f().")])
    attempt = Attempt(
        id="a1", parent_id="t1", task_id="t1", solution="def f():\n    return 1\n",
        tests="assert f() == 1\n",
    )
    _complete(run, "attempts", [attempt])
    config = tmp_path / "c.toml"
    config.write_text('[sandbox]\nimage = "selfalign-no-such-image:0"\n')
    code, out = _generate(run.path, "--config", str(config))
    assert code == 1 and "image 'selfalign-no-such-image:0' does not exist" in out
    # The stage's own command says the same.
    own = CliRunner().invoke(cli, ["execute", "--run", str(run.path), "--config", str(config)])
    assert own.exit_code == 1 and "does not exist" in _flat(own.output)
