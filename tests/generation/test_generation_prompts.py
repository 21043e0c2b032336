"""Few-shot examples, system prompts and prompt rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfalign.config import ConfigError
from selfalign.generation.parse import parse_answer
from selfalign.generation.prompts import (
    STAGES,
    PromptBuilder,
    default_prompts_dir,
    load_example,
    load_examples,
)


def test_project_examples_are_valid_and_their_answers_parse_cleanly():
    root = default_prompts_dir()
    examples = load_examples(root)
    if not examples:
        pytest.skip("prompts/examples/ has no examples yet")
    for example in examples:
        assert example.category in ("function", "class", "program"), example.name
        assert example.difficulty in ("easy", "medium", "hard"), example.name
        parsed = parse_answer(example.answer)
        # The few-shot answers are what the model imitates: they must parse themselves.
        assert parsed.parse_error is None, (example.name, parsed.parse_error)
        assert parsed.tests.strip() == example.tests.strip()


def test_every_stage_has_a_system_prompt():
    for stage in STAGES:
        assert (default_prompts_dir() / "system" / f"{stage}.md").read_text().strip()


def test_bad_example_file_is_named_in_the_error(tmp_path: Path):
    bad = tmp_path / "01-bad.toml"
    bad.write_text('category = "function"\nseed = "x"\n')
    with pytest.raises(ConfigError, match="01-bad.toml lacks keys: language"):
        load_example(bad)


def test_missing_examples_say_how_to_fix(tmp_path: Path, prompts_dir):
    (tmp_path / "system").mkdir()
    (tmp_path / "system" / "tasks.md").write_text("sys")
    with pytest.raises(ConfigError, match="--num-fewshot 0"):
        PromptBuilder.load("tasks", tmp_path, num_fewshot=2, mode="chat", seed=0)
    builder = PromptBuilder.load("tasks", tmp_path, num_fewshot=0, mode="chat", seed=0)
    assert len(builder.tasks("r", ["a"], "function", "easy", "python")) == 2


def test_fewshot_choice_is_seeded_per_record(prompts_dir):
    builder = PromptBuilder.load("concepts", prompts_dir, num_fewshot=2, mode="chat", seed=3)
    again = PromptBuilder.load("concepts", prompts_dir, num_fewshot=2, mode="chat", seed=3)
    other_seed = PromptBuilder.load("concepts", prompts_dir, num_fewshot=2, mode="chat", seed=4)
    picks = {tuple(e.name for e in builder.pick(f"r{i}")) for i in range(20)}
    assert len(picks) > 1
    assert [e.name for e in builder.pick("r1")] == [e.name for e in again.pick("r1")]
    assert any(builder.pick(f"r{i}") != other_seed.pick(f"r{i}") for i in range(20))


def test_completion_prompt_ends_where_the_answer_starts(prompts_dir):
    builder = PromptBuilder.load("respond", prompts_dir, num_fewshot=1, mode="completion", seed=0)
    prompt = builder.respond("r", "Write f.")
    assert isinstance(prompt, str)
    assert prompt.endswith("### Instruction\nWrite f.\n### Response\n")
    assert prompt.count("\n### Tests\n```python") == 1 and builder.stop == ("\n### Instruction",)
