"""The openai backend against llama.cpp's own server (llama-cpp-python) serving the embedded GGUF.

That server ignores `continue_final_message`: sent as a chat, every answer prefix of
configs/demo.toml was lost. These tests show the loss, that `auto` detects it, and
that the generation stages run through the CLI with `--backend openai` keep their
prefixes. The server comes from `scripts/llama_wheel.sh venv` (see conftest).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.generation.parse import ECHO_REASONS, echo_reason, parse_concepts
from selfalign.generation.prompts import with_answer_start
from selfalign.llm.base import SamplingParams
from selfalign.llm.openai_backend import PROBE, OpenAILLM
from selfalign.records import Attempt, Concepts, Seed, Task, stable_id

pytestmark = [pytest.mark.slow, pytest.mark.docker]

GREEDY = SamplingParams(temperature=0.0, max_tokens=24, seed=0)
CONCEPTS_PREFIX = "The key programming concepts of this snippet are:\n"
TASKS_PREFIX = "Write a Python {category} `"
RESPOND_PREFIX = "```python\n"


def client(llama, **kwargs) -> OpenAILLM:
    return OpenAILLM(llama.base_url, "embedded", tokenizer_name="embedded", **kwargs)


def test_llama_cpp_ignores_the_flag_and_auto_renders_the_template(llama_server):
    """(b) the probe picks `template`; (a) the prefilled prompt is then continued."""
    trusting = client(llama_server, prefill="server")
    llm = client(llama_server)
    assert llm.prefill_strategy() == "template"
    ((new_turn,),) = trusting.generate([PROBE], GREEDY)
    ((continued,),) = llm.generate([PROBE], GREEDY)
    # PROBE's assistant message ends at "four,": a new turn counts from "One" again.
    assert new_turn.text.lstrip().lower().startswith("one"), new_turn.text
    assert continued.text.lstrip().lower().startswith("five"), continued.text


def test_a_demo_concepts_prompt_keeps_its_prefix_on_llama_cpp(llama_server):
    chat = [
        {"role": "system", "content": "List the key programming concepts of the snippet."},
        {
            "role": "user",
            "content": "```python\ndef squares(n):\n    return [i * i for i in range(n)]\n```",
        },
    ]
    prompt = with_answer_start(chat, CONCEPTS_PREFIX)
    params = SamplingParams(temperature=0.0, max_tokens=40, seed=0)
    ((lost,),) = client(llama_server, prefill="server").generate([prompt], params)
    ((kept,),) = client(llama_server).generate([prompt], params)
    assert lost.text != kept.text
    text = CONCEPTS_PREFIX + kept.text
    concepts = parse_concepts(text, truncated=kept.finish_reason == "length")
    assert concepts and echo_reason(text, CONCEPTS_PREFIX, prompt, concepts) is None, text
    assert not kept.text.lower().startswith("the key programming")


SEEDS = [
    'def add(a, b):\n    """Return the sum of a and b."""\n    return a + b',
    'def is_even(n):\n    """Tell whether n is even."""\n    return n % 2 == 0',
    'def squares(n):\n    """Squares of 0..n-1."""\n    return [i * i for i in range(n)]',
]

CONFIG = textwrap.dedent(
    f"""\
    # configs/demo.toml with backend = "openai", smaller answers (llama.cpp on one thread).
    [model]
    backend = "openai"
    model = "embedded"
    mode = "chat"
    concurrency = 2

    [concepts]
    num_fewshot = 0
    answer_prefix = {json.dumps(CONCEPTS_PREFIX)}
    temperature = 0.3
    max_tokens = 40

    [tasks]
    num_fewshot = 0
    answer_prefix = {json.dumps(TASKS_PREFIX)}
    category_weights = {{ function = 1.0 }}
    difficulty_weights = {{ easy = 1.0 }}
    max_tokens = 64

    [respond]
    num_fewshot = 0
    answer_prefix = {json.dumps(RESPOND_PREFIX)}
    num_samples = 2
    temperature = 0.3
    max_tokens = 96
    tests_prefill = true
    tests_max_tokens = 32
    tests_max_asserts = 1
    """
)


def _write_seeds(run: Path) -> None:
    stage = run / "seeds"
    stage.mkdir(parents=True)
    rows = [
        Seed(id=stable_id("seed", code), parent_id=None, code=code, name=f"s{i}").to_dict()
        for i, code in enumerate(SEEDS)
    ]
    (stage / "part-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (stage / "_SUCCESS").write_text("")


def _records(run: Path, stage: str) -> list[dict]:
    return [
        json.loads(line)
        for p in sorted((run / stage).glob("part-*.jsonl"))
        for line in p.read_text().splitlines()
        if line
    ]


def _rejected(run: Path, stage: str) -> list[dict]:
    path = run / "rejected" / f"{stage}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_generation_stages_keep_their_prefixes_through_llama_cpp(llama_server, tmp_path):
    """(c) concepts, tasks and respond with --backend openai against llama.cpp."""
    from selfalign.cli import cli

    run = tmp_path / "run"
    _write_seeds(run)
    config = tmp_path / "openai.toml"
    config.write_text(CONFIG)
    common = [
        "--run",
        str(run),
        "--config",
        str(config),
        "--backend",
        "openai",
        "--base-url",
        llama_server.base_url,
        "--model",
        "embedded",
    ]
    for command in ("concepts", "tasks", "respond"):
        result = CliRunner().invoke(cli, [command, *common])
        assert result.exit_code == 0, f"{command}: {result.output}\n{llama_server.log_tail()}"

    concepts = [Concepts.from_dict(r) for r in _records(run, "concepts")]
    assert concepts, _rejected(run, "concepts")
    for record in concepts:
        assert record.raw_output.startswith(CONCEPTS_PREFIX)
        generated = record.raw_output[len(CONCEPTS_PREFIX) :]
        assert not generated.lower().startswith("the key programming"), record.raw_output
        assert CONCEPTS_PREFIX.strip() not in record.concepts
        assert echo_reason(record.raw_output, CONCEPTS_PREFIX, None, record.concepts) is None

    tasks = [Task.from_dict(r) for r in _records(run, "tasks")]
    assert tasks, _rejected(run, "tasks")
    prefix = TASKS_PREFIX.format(category="function")
    for task in tasks:
        assert task.raw_output.startswith(prefix) and task.instruction.startswith(prefix)
        assert not task.raw_output[len(prefix) :].startswith(("Write a", "```")), task.raw_output
        assert echo_reason(task.raw_output, prefix, None, [task.instruction]) is None

    attempts = [Attempt.from_dict(r) for r in _records(run, "attempts")]
    assert len(attempts) == 2 * len(tasks)
    for attempt in attempts:
        assert attempt.raw_output.startswith(RESPOND_PREFIX)
        assert not attempt.raw_output[len(RESPOND_PREFIX) :].startswith("```"), attempt.raw_output
        assert attempt.parse_error not in ECHO_REASONS
        assert echo_reason(attempt.raw_output, RESPOND_PREFIX) is None
    # The continued answers are code: the implementation block holds a function.
    assert any(a.solution.lstrip().startswith("def ") for a in attempts)
    for stage in ("concepts", "tasks"):
        assert not [r for r in _rejected(run, stage) if r.get("reason") in ECHO_REASONS]

    # The judge through the same server: its prefilled judgments are continued too.
    from selfalign.judge.prompt import prefill_text

    executed = CliRunner().invoke(cli, ["execute", "--run", str(run), "--workers", "2"])
    assert executed.exit_code == 0, executed.output
    judge_args = ["--judge-backend", "openai", "--judge-base-url", llama_server.base_url]
    judge_args += ["--judge-model", "embedded", "--prefill", "--preferences", "readability"]
    judge_args += ["--max-tokens", "48", "--tasks", "all"]
    judged = CliRunner().invoke(cli, ["judge", "--run", str(run), *judge_args])
    assert judged.exit_code == 0, f"{judged.output}\n{llama_server.log_tail()}"
    judgments = _records(run, "judgments")
    assert judgments, _rejected(run, "judgments")
    start = prefill_text()
    for record in judgments:
        for call in record["calls"]:
            assert call["raw_output"].startswith(start), call["raw_output"]
            # Continued, not restarted: the model did not write the heading again.
            assert not call["raw_output"][len(start) :].lstrip().startswith("### Response 1")
