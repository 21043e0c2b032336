"""The click commands end to end over the openai backend (a local server with a scripted model)."""

from __future__ import annotations

import threading
import tomllib

import pytest
from click.testing import CliRunner

from selfalign.cli import cli
from selfalign.llm.serve import OpenAIServer

ANSWER = (
    "Use a loop.\n\n```python\ndef f(x):\n    return x\n```\n\n"
    "### Tests\n```python\nassert f(1) == 1\n```"
)


def scripted(prompt, k):
    text = prompt[-1]["content"]
    if text.startswith("### Snippet"):
        return "loops, functions"
    if text.startswith("### Task"):
        return "Write a function `f(x)` that returns x unchanged, for any value."
    return ANSWER


@pytest.fixture
def server(fake_llm_factory):
    srv = OpenAIServer(fake_llm_factory(scripted))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_three_commands_run_in_order_and_save_their_config(seeded_run, server, prompts_dir):
    runner = CliRunner()
    common = [
        "--run",
        str(seeded_run.path),
        "--backend",
        "openai",
        "--base-url",
        server.base_url,
        "--prompts-dir",
        prompts_dir,
    ]
    result = runner.invoke(cli, ["respond", *common])
    assert result.exit_code == 2 and "selfalign tasks --run" in result.output

    for command, extra in (
        ("concepts", ["--num-fewshot", "2"]),
        ("tasks", ["--limit", "3"]),
        ("respond", ["--num-samples", "2", "--max-tokens", "64"]),
    ):
        result = runner.invoke(cli, [command, *common, *extra])
        assert result.exit_code == 0, result.output
    assert len(list(seeded_run.stage("concepts").read())) == 5
    assert len(list(seeded_run.stage("tasks").read())) == 3
    attempts = list(seeded_run.stage("attempts").read())
    assert len(attempts) == 6 and all(a["parse_error"] is None for a in attempts)
    config = tomllib.loads(seeded_run.config_path.read_text())
    assert config["model"]["backend"] == "openai" and config["respond"]["num_samples"] == 2
    assert config["concepts"]["num_fewshot"] == 2


def test_bad_option_fails_with_a_configuration_error(seeded_run, prompts_dir):
    result = CliRunner().invoke(
        cli,
        ["concepts", "--run", str(seeded_run.path), "--top-p", "0", "--prompts-dir", prompts_dir],
    )
    assert result.exit_code == 2 and "top_p must be in (0, 1]" in result.output
