"""Answer prefixes (prefills) and the two-step I→R answer (`tests_prefill`).

The flow tests script the model's replies to check what the stages send and how
they assemble the answer; the last tests run the same paths on the real 135M model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from selfalign.generation.config import ConceptsConfig, RespondConfig, TasksConfig
from selfalign.generation.parse import first_statements, longest_valid_prefix
from selfalign.generation.prompts import with_answer_start
from selfalign.generation.tests_step import entry_point
from selfalign.llm.base import Generation, Prompt, SamplingParams
from selfalign.llm.config import ModelConfig
from selfalign.pipeline import run_named
from selfalign.records import Attempt, Concepts, Task

CHAT = ModelConfig(mode="chat")
COMPLETION = ModelConfig(mode="completion")


class ScriptedLLM:
    """Replies from a function of (prompt, params); records prompts and params per call."""

    def __init__(self, reply: Callable[[Prompt, SamplingParams], Generation]) -> None:
        self.reply = reply
        self.calls: list[tuple[list[Prompt], SamplingParams]] = []

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        self.calls.append((list(prompts), params))
        return [[self.reply(p, params) for _ in range(params.n)] for p in prompts]


def answer_so_far(prompt: Prompt) -> str:
    """What the prompt already wrote of the answer (chat prefill or completion tail)."""
    if isinstance(prompt, str):
        return prompt
    return prompt[-1]["content"] if prompt[-1]["role"] == "assistant" else ""


def two_step(prompts_dir: str, **options) -> RespondConfig:
    """A zero-shot two-step respond configuration; ``options`` override."""
    base = {"num_fewshot": 0, "num_samples": 1, "tests_prefill": True, "tests_max_tokens": 40}
    return RespondConfig(prompts_dir=prompts_dir, **{**base, **options})


def one_task(run_dir, stage_writer, instruction: str) -> None:
    task = Task(id="task-0", parent_id="c0", seed_id="s0", instruction=instruction)
    stage_writer(run_dir, "tasks", [task.to_dict()])


# -- the prefill helper and its config ---------------------------------------------------


def test_with_answer_start_in_both_modes():
    chat: Prompt = [{"role": "user", "content": "q"}]
    once = with_answer_start(chat, "```python\n")
    assert once == [*chat, {"role": "assistant", "content": "```python\n"}]
    twice = with_answer_start(once, "def f(")
    assert twice[-1] == {"role": "assistant", "content": "```python\ndef f("}
    assert len(twice) == 2 and once[-1]["content"] == "```python\n"  # not mutated
    assert with_answer_start("Q\n### Response\n", "```") == "Q\n### Response\n```"
    assert with_answer_start(chat, "") is chat


def test_answer_prefix_placeholders_are_checked_and_filled():
    cfg = TasksConfig(answer_prefix="Write a {language} {category} `")
    assert cfg.answer_start(category="class", language="python") == "Write a python class `"
    with pytest.raises(ValueError, match=r"answer_prefix .*\{category\}"):
        TasksConfig(answer_prefix="Write a {kind}")
    with pytest.raises(ValueError, match="tests_max_asserts"):
        RespondConfig(tests_max_asserts=-1)


# -- S→C and C→I with a prefix -------------------------------------------------------------


def test_concepts_and_tasks_continue_the_prefix_and_parse_it(seeded_run, prompts_dir):
    def reply(prompt: Prompt, params: SamplingParams) -> Generation:
        so_far = answer_so_far(prompt)
        if so_far.endswith("are:\n"):
            return Generation("- recursion\n- slicing", "stop", 6)
        assert so_far == "Write a Python function `"
        return Generation("double(x)` that returns twice x.\n\n### Output", "stop", 9)

    llm = ScriptedLLM(reply)
    ccfg = ConceptsConfig(
        prompts_dir=prompts_dir, num_fewshot=0, answer_prefix="The concepts are:\n", limit=2
    )
    stats = run_named(seeded_run, "concepts", {"model": CHAT, "concepts": ccfg}, llm=llm)
    assert stats.written == 2
    records = [Concepts.from_dict(r) for r in seeded_run.stage("concepts").read()]
    assert all(r.concepts == ["recursion", "slicing"] for r in records)
    assert all(r.raw_output.startswith("The concepts are:\n- recursion") for r in records)

    tcfg = TasksConfig(
        prompts_dir=prompts_dir,
        num_fewshot=0,
        answer_prefix="Write a Python {category} `",
        category_weights={"function": 1.0},
    )
    run_named(seeded_run, "tasks", {"model": CHAT, "tasks": tcfg}, llm=llm)
    tasks = [Task.from_dict(r) for r in seeded_run.stage("tasks").read()]
    assert [t.instruction for t in tasks] == [
        "Write a Python function `double(x)` that returns twice x."
    ] * 2
    prompts, _ = llm.calls[-1]
    assert all(
        p[-1] == {"role": "assistant", "content": "Write a Python function `"} for p in prompts
    )


# -- I→R in two steps ----------------------------------------------------------------------


def two_step_reply(
    tests: str, finish: str = "stop"
) -> Callable[[Prompt, SamplingParams], Generation]:
    """The model's implementation (cut at its closing fence), then ``tests``."""

    def reply(prompt: Prompt, params: SamplingParams) -> Generation:
        so_far = answer_so_far(prompt)
        if not so_far.endswith("assert double("):
            assert "\n```\n" in params.stop  # the first step ends with the code block
            return Generation("Twice x:\n```python\ndef double(x):\n    return 2 * x", "stop", 20)
        assert so_far.endswith(
            "Twice x:\n```python\ndef double(x):\n    return 2 * x\n```\n\n"
            "### Tests\n```python\nassert double("
        )
        assert params.n == 1 and "```" in params.stop and params.max_tokens == 40
        return Generation(tests, finish, 12)

    return reply


def test_tests_prefill_writes_the_tests_in_a_second_step(run_dir, stage_writer, prompts_dir):
    one_task(run_dir, stage_writer, "Write `double(x)` that returns twice x.")
    llm = ScriptedLLM(two_step_reply("2) == 4\nassert double(-1) == -2\n"))
    cfg = two_step(prompts_dir, num_samples=2)
    stats = run_named(run_dir, "respond", {"model": CHAT, "respond": cfg}, llm=llm)
    assert len(llm.calls) == 2 and len(llm.calls[1][0]) == 2  # both samples, one batch
    assert stats.metrics["tests_step"] == 2 and stats.metrics["parse_ok"] == 2
    attempts = [Attempt.from_dict(r) for r in run_dir.stage("attempts").read()]
    for a in attempts:
        assert a.parse_error is None and a.finish_reason == "stop"
        assert a.solution == "def double(x):\n    return 2 * x"
        assert a.tests == "assert double(2) == 4\nassert double(-1) == -2"
        assert a.response == "Twice x:\n```python\ndef double(x):\n    return 2 * x\n```"
        assert a.raw_output.endswith("assert double(-1) == -2\n```")


def test_tests_cut_by_the_token_limit_keep_their_complete_statements(
    run_dir, stage_writer, prompts_dir
):
    one_task(run_dir, stage_writer, "Write `double(x)` that returns twice x.")
    llm = ScriptedLLM(two_step_reply("2) == 4\nassert double(3) == [6,\n 7,", "length"))
    cfg = two_step(prompts_dir)
    run_named(run_dir, "respond", {"model": CHAT, "respond": cfg}, llm=llm)
    (a,) = [Attempt.from_dict(r) for r in run_dir.stage("attempts").read()]
    assert a.tests == "assert double(2) == 4" and a.parse_error is None

    # Nothing complete at all: the answer stays truncated, as the model left it.
    llm = ScriptedLLM(two_step_reply("[1, 2,", "length"))
    run_named(run_dir, "respond", {"model": CHAT, "respond": cfg}, llm=llm, force=True)
    (a,) = [Attempt.from_dict(r) for r in run_dir.stage("attempts").read()]
    assert a.parse_error == "truncated"


def test_tests_max_asserts_keeps_the_first_statements(run_dir, stage_writer, prompts_dir):
    one_task(run_dir, stage_writer, "Write `double(x)` that returns twice x.")
    llm = ScriptedLLM(
        two_step_reply("2) == 4\nassert double(\n    3) == 6\nassert double(0) == 1\n")
    )
    kept = {}
    for n in (0, 1, 2):
        cfg = two_step(prompts_dir, tests_max_asserts=n)
        run_named(run_dir, "respond", {"model": CHAT, "respond": cfg}, llm=llm, force=True)
        (a,) = [Attempt.from_dict(r) for r in run_dir.stage("attempts").read()]
        kept[n] = (a.id, a.tests)
    assert kept[1][1] == "assert double(2) == 4"
    assert kept[2][1] == "assert double(2) == 4\nassert double(\n    3) == 6"
    assert kept[0][1].endswith("assert double(0) == 1")
    assert len({attempt_id for attempt_id, _ in kept.values()}) == 3  # settings are in the id


def test_completion_mode_continues_the_text_without_repeating_the_prefix(
    run_dir, stage_writer, prompts_dir
):
    one_task(run_dir, stage_writer, "Write `double(x)` that returns twice x.")

    def reply(prompt: Prompt, params: SamplingParams) -> Generation:
        assert isinstance(prompt, str)
        if not prompt.endswith("assert double("):
            assert prompt.endswith("### Response\n```python\n")
            return Generation("def double(x):\n    return 2 * x", "stop", 9)
        assert prompt.count("```python\n") == 2 and prompt.endswith("assert double(")
        return Generation("1) == 2\n", "stop", 5)

    llm = ScriptedLLM(reply)
    cfg = two_step(prompts_dir, answer_prefix="```python\n")
    run_named(run_dir, "respond", {"model": COMPLETION, "respond": cfg}, llm=llm)
    (a,) = [Attempt.from_dict(r) for r in run_dir.stage("attempts").read()]
    assert a.solution == "def double(x):\n    return 2 * x"
    assert a.tests == "assert double(1) == 2" and a.parse_error is None
    assert a.raw_output.startswith("```python\ndef double(x):")


def test_answers_without_an_implementation_skip_the_tests_step(run_dir, stage_writer, prompts_dir):
    one_task(run_dir, stage_writer, "Write `double(x)` that returns twice x.")
    llm = ScriptedLLM(lambda p, s: Generation("I cannot help with that.", "stop", 6))
    cfg = two_step(prompts_dir, num_samples=2)
    stats = run_named(run_dir, "respond", {"model": CHAT, "respond": cfg}, llm=llm)
    assert len(llm.calls) == 1 and stats.metrics["tests_step"] == 0
    assert stats.metrics["parse_error_no_code_block"] == 2


def test_statement_helpers():
    assert (
        entry_point("import re\n\nclass A:\n    def m(self): ...\ndef top(x):\n    pass") == "top"
    )
    assert entry_point("x = 1") is None
    assert first_statements("assert f(1)\nassert f(\n 2)\nassert f(3)", 2) == (
        "assert f(1)\nassert f(\n 2)"
    )
    assert first_statements("assert f(", 1) == "assert f("  # unparsable: left to the parser
    assert longest_valid_prefix("assert f(1)\nassert f([1,\n 2,") == "assert f(1)"
    assert longest_valid_prefix("f(") == ""


# -- the real model --------------------------------------------------------------------


@pytest.mark.slow
def test_the_real_model_continues_a_prefilled_answer(real_llm):
    prefix = "```python\ndef add(a, b):\n    return"
    chat: Prompt = [{"role": "user", "content": "Write a Python function that adds a and b."}]
    ids = real_llm.encode(with_answer_start(chat, prefix))
    text = real_llm.tokenizer.decode(ids)
    assert text.endswith(prefix)  # no end-of-turn token: the model goes on from here
    assert real_llm.tokenizer.decode(real_llm.encode(chat)).endswith("assistant\n")
    ((gen,),) = real_llm.generate(
        [with_answer_start(chat, prefix)], SamplingParams(temperature=0, max_tokens=8)
    )
    assert gen.text.strip() and "<|im_start|>" not in gen.text


@pytest.mark.slow
def test_real_model_two_step_answers_test_the_function_they_define(
    run_dir, stage_writer, real_llm, prompts_dir
):
    tasks = [
        Task(id=f"task-{i}", parent_id=f"c{i}", seed_id=f"s{i}", instruction=text).to_dict()
        for i, text in enumerate(
            [
                "Write a Python function `add_numbers(a: int, b: int) -> int` that returns a + b.",
                "Write a Python function `is_even(n: int) -> bool` that tells whether n is even.",
            ]
        )
    ]
    stage_writer(run_dir, "tasks", tasks)
    cfg = two_step(
        prompts_dir, num_samples=2, max_tokens=96, answer_prefix="```python\n", tests_max_tokens=32
    )
    model = ModelConfig(device="cpu")
    stats = run_named(run_dir, "respond", {"model": model, "respond": cfg}, llm=real_llm)
    attempts = [Attempt.from_dict(r) for r in run_dir.stage("attempts").read()]
    assert len(attempts) == 4 and stats.metrics["tests_step"] >= 1
    tested = [a for a in attempts if a.tests]
    assert tested, [a.raw_output for a in attempts]
    for a in tested:
        name = entry_point(a.solution)
        assert name and a.tests.startswith(f"assert {name}("), a.raw_output
        assert a.raw_output.startswith("```python\n")
