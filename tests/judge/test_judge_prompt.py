"""Rubrics, presentation orders and the rendered judge prompt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from selfalign.config import ConfigError
from selfalign.generation.prompts import default_prompts_dir
from selfalign.judge.prompt import (
    COMPLETION_STOPS,
    JudgePrompts,
    cut,
    prefill_text,
    presentation_orders,
    skeleton,
)
from selfalign.judge.rubrics import PREFERENCES, load_rubrics

from .conftest import shown_responses


def test_every_preference_has_a_rubric_with_five_named_levels():
    rubrics = load_rubrics(default_prompts_dir())
    assert [r.preference for r in rubrics] == list(PREFERENCES)
    for rubric in rubrics:
        assert [lv.score for lv in rubric.levels] == [1, 2, 3, 4, 5]
        labels = [lv.label for lv in rubric.levels]
        assert len(set(labels)) == 5 and all(labels)
        assert 3 <= len(rubric.criteria) <= 6
        text = rubric.text()
        assert rubric.title in text and all(f"{i} ({labels[i - 1]})" in text for i in range(1, 6))


def _copy_prompts(tmp_path: Path) -> Path:
    root = tmp_path / "prompts"
    shutil.copytree(default_prompts_dir() / "judge", root / "judge")
    return root


def test_a_broken_rubric_file_names_itself(tmp_path):
    root = _copy_prompts(tmp_path)
    path = root / "judge" / "rubrics" / "readability.toml"
    path.write_text(path.read_text().replace("score = 3", "score = 7"))
    with pytest.raises(ConfigError, match=r"readability\.toml.*scores 1 to 5"):
        load_rubrics(root)
    path.unlink()
    with pytest.raises(ConfigError, match="readability.toml is missing"):
        load_rubrics(root)
    with pytest.raises(ConfigError, match="unknown preference 'speed'"):
        load_rubrics(root, ("speed",))


def test_format_file_must_hold_the_skeleton(tmp_path):
    root = _copy_prompts(tmp_path)
    (root / "judge" / "format.md").write_text("Rate them.")
    with pytest.raises(ConfigError, match="skeleton"):
        JudgePrompts.load(root, PREFERENCES)
    with pytest.raises(ConfigError, match="does not exist"):
        JudgePrompts.load(tmp_path / "nowhere", PREFERENCES)


def test_orders_are_seeded_per_task_preference_and_round():
    first = presentation_orders(0, "task-a", "readability", 4, 1, "reverse")
    assert first == presentation_orders(0, "task-a", "readability", 4, 1, "reverse")
    assert sorted(first[0]) == [0, 1, 2, 3]
    # Over many tasks the shuffle really shuffles, and differs between preferences.
    orders = {
        tuple(presentation_orders(0, f"t{i}", "readability", 4, 1, "reverse")[0]) for i in range(40)
    }
    assert len(orders) > 10
    by_pref = {tuple(presentation_orders(0, "t", p, 4, 1, "reverse")[0]) for p in PREFERENCES}
    assert len(by_pref) > 1
    assert presentation_orders(1, "task-a", "readability", 4, 1, "reverse") != first or (
        presentation_orders(2, "task-a", "readability", 4, 1, "reverse") != first
    )


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_swap_orders(count):
    rev = presentation_orders(0, "task-a", "readability", count, 2, "reverse")
    assert rev[1] == rev[0][::-1]
    shuf = presentation_orders(0, "task-a", "readability", count, 2, "shuffle")
    assert shuf[0] == rev[0] and sorted(shuf[1]) == list(range(count))
    if count > 1:
        assert shuf[1] != shuf[0]


def test_chat_prompt_holds_rubric_task_responses_and_format():
    prompts = JudgePrompts.load("", PREFERENCES, "chat")
    rendered = prompts.render("Add two numbers.", ["answer A", "answer B"], "readability")
    assert isinstance(rendered, list)
    assert [m["role"] for m in rendered] == ["system", "user"]
    user = rendered[1]["content"]
    assert "Quality to judge: Readability" in user and "Add two numbers." in user
    assert shown_responses(rendered) == ["answer A", "answer B"]
    assert skeleton(2) in user and "### Response 3" not in user
    assert prompts.stop == ()
    prefilled = prompts.render("Add two numbers.", ["a", "b"], "readability", prefill=True)
    assert prefilled[-1] == {"role": "assistant", "content": prefill_text()}


def test_completion_prompt_is_plain_text_with_stops():
    prompts = JudgePrompts.load("", ["coding_style"], "completion")
    text = prompts.render("Task.", ["only answer"], "coding_style")
    assert isinstance(text, str) and text.endswith("## Judgment\n")
    assert "There is 1 response to rate." in text
    assert prompts.stop == COMPLETION_STOPS
    prefilled = prompts.render("Task.", ["x"], "coding_style", prefill=True)
    assert isinstance(prefilled, str) and prefilled.endswith("Rating:")


def test_long_responses_are_cut_visibly():
    assert cut("abc", 0) == "abc"
    assert cut("  abc  ", 10) == "abc"
    assert cut("x" * 50, 10) == "x" * 10 + "\n[... 40 more characters cut]"
