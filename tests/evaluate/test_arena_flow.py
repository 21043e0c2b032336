"""Arena flow with scripted models: position swap, follow-ups, missing verdicts, files, CLI.

The models here are fakes that answer from a function of the prompt: they test the
flow and the scoring, not that any model judges well (the slow test runs the real one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from selfalign.evaluate.arena import (
    ArenaConfig,
    Role,
    compare,
    evaluate_arena,
    is_arena_run,
    is_arena_summary,
    run,
)
from selfalign.evaluate.arena_cli import arena_command, arena_compare_table, show_arena_comparison
from selfalign.evaluate.arena_judge import CONCLUDE, TRANSCRIPT_STOP
from selfalign.evaluate.arena_questions import ArenaQuestion, QuestionSet
from selfalign.llm.base import Generation, Prompt, SamplingParams
from selfalign.llm.config import ModelConfig

MODEL, BASELINE, JUDGE = "fake-model", "fake-baseline", "fake-judge"


class ScriptedLLM:
    """Answers from a function of the prompt; records every call and its parameters."""

    def __init__(self, answer: Callable[[Prompt], str]) -> None:
        self.answer = answer
        self.calls: list[tuple[list[Prompt], SamplingParams]] = []

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        self.calls.append((list(prompts), params))
        return [[Generation(self.answer(p), "stop", 3)] for p in prompts]


def _last_user(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return next(m["content"] for m in reversed(prompt) if m["role"] == "user")


def _model_is_a(prompt: Prompt) -> bool:
    text = _last_user(prompt) if not isinstance(prompt, str) else prompt
    return "<assistant_a_answer>\nfrom fake-model" in text


def _is_follow_up(prompt: Prompt) -> bool:
    return _last_user(prompt) == CONCLUDE or (isinstance(prompt, str) and CONCLUDE in prompt)


def _answerer(name: str) -> ScriptedLLM:
    return ScriptedLLM(lambda p: f"from {name}: " + _last_user(p)[:20])


def _questions(n: int = 6) -> QuestionSet:
    categories = ("debugging", "sql", "web")
    items = [
        ArenaQuestion(
            id=f"q{i}",
            messages=(("user", f"question number {i}: why does my code fail?"),),
            languages=("Python",) if i % 2 else ("SQL", "Python"),
            difficulty=("easy", "hard")[i % 2],
            category=categories[i % 3],
            baseline_answer=f"column answer {i}",
        )
        for i in range(n)
    ]
    return QuestionSet(path="memory", questions=items)


class Loader:
    """Hands out one scripted model per configured model name; counts the loads."""

    def __init__(self, judge: Callable[[Prompt], str]) -> None:
        self.models = {
            MODEL: _answerer(MODEL),
            BASELINE: _answerer(BASELINE),
            JUDGE: ScriptedLLM(judge),
        }
        self.loads: list[str] = []

    def __call__(self, cfg: ModelConfig) -> ScriptedLLM:
        self.loads.append(cfg.model)
        return self.models[cfg.model]


def _roles(mode: str = "chat") -> dict[str, Role]:
    return {
        key: Role(name, ModelConfig(model=name, mode=mode))
        for key, name in (("model", MODEL), ("baseline", BASELINE), ("judge", JUDGE))
    }


def _arena(
    judge: Callable[[Prompt], str],
    cfg: ArenaConfig | None = None,
    out: Path | None = None,
    n: int = 6,
    mode: str = "chat",
) -> tuple[dict, Loader]:
    loader = Loader(judge)
    roles = _roles(mode)
    report = evaluate_arena(
        _questions(n),
        cfg or ArenaConfig(bootstrap_rounds=200),
        model=roles["model"],
        baseline=roles["baseline"],
        judge=roles["judge"],
        out=out,
        load=loader,
    )
    return report.summary, loader


def test_a_judge_that_always_says_a_much_better_gives_only_ties() -> None:
    summary, _ = _arena(lambda p: "Verdict: [[A>>B]]")
    overall = summary["overall"]
    assert (overall["wins"], overall["ties"], overall["losses"]) == (0, 6, 0)
    assert overall["tie_rate"] == 1.0 and overall["win_rate"] == 0.0
    assert overall["score"] == 0.5
    assert summary["games"]["verdicts"] == {"A>>B": 12}


def test_a_judge_that_always_prefers_the_model_gives_only_wins() -> None:
    summary, _ = _arena(lambda p: "[[A>B]]" if _model_is_a(p) else "[[B>>A]]")
    overall = summary["overall"]
    assert overall["win_rate"] == 1.0 and overall["score"] == 1.0
    assert overall["score_ci"] == {"low": 1.0, "high": 1.0}
    for grouping in ("by_category", "by_language", "by_difficulty"):
        assert all(g["score"] == 1.0 for g in summary[grouping].values())
    # A question listing two languages counts in both.
    assert summary["by_language"]["Python"]["n"] == 6
    assert summary["by_language"]["SQL"]["n"] == 3


def test_a_judge_that_prefers_the_baseline_gives_only_losses() -> None:
    summary, _ = _arena(lambda p: "[[B>A]]" if _model_is_a(p) else "[[A>B]]")
    assert summary["overall"]["losses"] == 6 and summary["overall"]["score"] == 0.0


def test_a_reply_without_a_verdict_is_asked_once_to_conclude() -> None:
    def judge(p: Prompt) -> str:
        # The follow-up reply starts after the prefill "Verdict: [[".
        return "A=B]]" if _is_follow_up(p) else "Both answers look plausible and"

    cfg = ArenaConfig(bootstrap_rounds=100, conclude_max_new_tokens=7)
    summary, loader = _arena(judge, cfg)
    assert summary["games"]["needed_follow_up"] == 12
    assert summary["games"]["missing"] == 0
    assert summary["overall"]["ties"] == 6
    calls = loader.models[JUDGE].calls
    assert len(calls) == 2  # all first replies in one batch, all follow-ups in one
    follow_ups, params = calls[1]
    assert params.max_tokens == 7
    for prompt in follow_ups:
        assert isinstance(prompt, list)
        assert [m["role"] for m in prompt[-3:]] == ["assistant", "user", "assistant"]
        assert prompt[-3]["content"] == "Both answers look plausible and"
        assert prompt[-2]["content"] == CONCLUDE
        assert prompt[-1]["content"] == "Verdict: [["


def test_the_follow_up_without_a_prefill(tmp_path: Path) -> None:
    def judge(p: Prompt) -> str:
        return "[[B>A]]" if _is_follow_up(p) else "hmm"

    cfg = ArenaConfig(bootstrap_rounds=100, conclude_prefill="")
    _, loader = _arena(judge, cfg, out=tmp_path)
    follow_ups, _ = loader.models[JUDGE].calls[1]
    assert all(isinstance(p, list) and p[-1]["content"] == CONCLUDE for p in follow_ups)
    first = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[0])
    assert [g["conclude_reply"] for g in first["games"]] == ["[[B>A]]", "[[B>A]]"]
    assert [g["points"] for g in first["games"]] == [-1, 1]
    assert first["outcome"] == "tie"


def test_a_judge_that_never_concludes_leaves_the_games_missing() -> None:
    summary, loader = _arena(lambda p: "I cannot decide.")
    assert summary["games"]["missing"] == 12
    assert summary["overall"]["n"] == 0 and summary["overall"]["missing"] == 6
    assert summary["overall"]["score"] is None
    assert len(loader.models[JUDGE].calls) == 2  # asked once more, not again and again


def test_one_missing_game_follows_the_missing_policy(tmp_path: Path) -> None:
    def judge(p: Prompt) -> str:
        # Readable only when the model stands in position A.
        return "[[A>B]]" if _model_is_a(p) else "unsure"

    summary, _ = _arena(judge, ArenaConfig(bootstrap_rounds=100, missing="other_game"))
    assert summary["overall"]["wins"] == 6 and summary["overall"]["missing"] == 0
    summary, _ = _arena(judge, ArenaConfig(bootstrap_rounds=100, missing="exclude"), tmp_path)
    assert summary["overall"]["n"] == 0 and summary["overall"]["missing"] == 6
    results = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert all(r["outcome"] == "missing" for r in results)
    assert all(r["games"][1]["verdict"] is None for r in results)


def test_prompts_go_to_the_engine_in_chunks() -> None:
    summary, loader = _arena(lambda p: "[[A=B]]", ArenaConfig(bootstrap_rounds=50, batch_size=4))
    assert [len(c[0]) for c in loader.models[MODEL].calls] == [4, 2]
    assert [len(c[0]) for c in loader.models[JUDGE].calls] == [4, 4, 4]
    assert summary["overall"]["n"] == 6


def test_the_judge_sees_both_orders_and_answers_first() -> None:
    _, loader = _arena(lambda p: "[[A=B]]", n=1)
    (prompts, _), = loader.models[JUDGE].calls
    first, second = (_last_user(p) for p in prompts)
    assert first.index("from fake-model") < first.index("from fake-baseline")
    assert second.index("from fake-baseline") < second.index("from fake-model")
    chat = prompts[0]
    assert isinstance(chat, list)
    system = chat[0]["content"]
    assert chat[0]["role"] == "system"
    assert "Answer the question yourself first" in system
    assert "question number 0" in first


def test_completion_mode_sends_a_transcript_with_stops() -> None:
    _, loader = _arena(lambda p: "[[A=B]]", n=2, mode="completion")
    prompts, params = loader.models[MODEL].calls[0]
    assert all(isinstance(p, str) and p.endswith("### Assistant\n") for p in prompts)
    assert set(TRANSCRIPT_STOP) <= set(params.stop)
    judge_prompts, _ = loader.models[JUDGE].calls[0]
    assert all(isinstance(p, str) and p.startswith("### System\n") for p in judge_prompts)


def test_roles_with_one_configuration_share_one_engine() -> None:
    loader = Loader(lambda p: "[[A=B]]")
    same = Role(JUDGE, ModelConfig(model=JUDGE))
    evaluate_arena(
        _questions(2), ArenaConfig(bootstrap_rounds=10), model=same, baseline=same, judge=same,
        load=loader,
    )
    assert loader.loads == [JUDGE]

    # Model == judge, baseline different: the baseline goes first, the model's engine stays.
    loader = Loader(lambda p: "[[A=B]]")
    evaluate_arena(
        _questions(2), ArenaConfig(bootstrap_rounds=10), model=same,
        baseline=Role(BASELINE, ModelConfig(model=BASELINE)), judge=same, load=loader,
    )
    assert loader.loads == [BASELINE, JUDGE]


def test_baseline_answers_can_come_from_the_questions_file(tmp_path: Path) -> None:
    questions = _questions(3)
    questions.baseline_column = "gpt-4-turbo-2024-04-09_response"
    loader = Loader(lambda p: "[[A=B]]")
    roles = _roles()
    report = evaluate_arena(
        questions, ArenaConfig(bootstrap_rounds=10), model=roles["model"], baseline=None,
        judge=roles["judge"], out=tmp_path, load=loader,
    )
    assert loader.loads == [MODEL, JUDGE]
    assert [r["baseline_answer"] for r in report.results] == [
        "column answer 0", "column answer 1", "column answer 2",
    ]
    assert report.summary["baseline"] == "column:gpt-4-turbo-2024-04-09_response"


def test_no_baseline_at_all_says_how_to_fix_it() -> None:
    roles = _roles()
    with pytest.raises(ValueError, match="--baseline"):
        run(ArenaConfig(), model=roles["model"], baseline=None, judge=roles["judge"])


def test_the_report_files(tmp_path: Path) -> None:
    summary, _ = _arena(lambda p: "[[A>B]]" if _model_is_a(p) else "[[A=B]]", out=tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert is_arena_summary(on_disk)
    assert on_disk["model"] == MODEL and on_disk["baseline"] == BASELINE
    assert on_disk["judge"] == JUDGE and on_disk["questions"] == 6
    assert set(on_disk["by_category"]) == {"debugging", "sql", "web"}
    results = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == [f"q{i}" for i in range(6)]
    first = results[0]
    assert first["model_answer"].startswith("from fake-model")
    assert first["baseline_answer"].startswith("from fake-baseline")
    assert [g["model_position"] for g in first["games"]] == ["A", "B"]
    assert [g["judgment"] for g in first["games"]] == ["[[A>B]]", "[[A=B]]"]
    assert [g["points"] for g in first["games"]] == [1, 0]
    assert first["points"] == 1 and first["outcome"] == "win"


# -- command line ---------------------------------------------------------------------


@pytest.fixture
def fake_loader(monkeypatch: pytest.MonkeyPatch) -> Loader:
    loader = Loader(lambda p: "[[A>>B]]" if _model_is_a(p) else "[[A=B]]")
    monkeypatch.setattr("selfalign.evaluate.arena._default_loader", loader)
    return loader


def _questions_file(path: Path, n: int = 4) -> Path:
    lines = [
        json.dumps(
            {
                "id": f"x{i}",
                "messages": [{"role": "user", "content": f"How do I fix bug {i}?"}],
                "programming_language": ["Go"],
                "difficulty": "medium",
                "category": "debugging",
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_command_prints_the_table_and_writes_the_files(
    tmp_path: Path, fake_loader: Loader
) -> None:
    config = tmp_path / "arena.toml"
    config.write_text(
        f'[eval.arena]\nbootstrap_rounds = 50\n\n[eval.arena.judge]\nmodel = "{JUDGE}"\n'
    )
    out = tmp_path / "out"
    args = [
        "--model", MODEL, "--baseline", BASELINE, "--questions",
        str(_questions_file(tmp_path / "q.jsonl")), "--config", str(config), "--out", str(out),
    ]
    result = CliRunner().invoke(arena_command, args)
    assert result.exit_code == 0, result.output
    assert f"arena: {MODEL} vs {BASELINE} (judge: {JUDGE})" in result.output
    assert "overall" in result.output and "by category" in result.output
    assert "debugging" in result.output and "Go" in result.output
    assert fake_loader.loads == [MODEL, BASELINE, JUDGE]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["wins"] == 4 and summary["settings"]["bootstrap_rounds"] == 50
    assert len((out / "results.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no baseline"),
        (["--baseline", BASELINE, "--baseline-column", "auto"], "both a baseline model"),
        (["--baseline", BASELINE, "--missing", "guess"], "guess"),
        (["--baseline", BASELINE, "--questions", "/nonexistent.jsonl"], "does not exist"),
    ],
)
def test_bad_command_lines_say_how_to_fix_them(
    args: list[str], message: str, fake_loader: Loader
) -> None:
    result = CliRunner().invoke(arena_command, ["--model", MODEL, "--judge", JUDGE, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert fake_loader.loads == []


def test_compare_lines_up_base_and_tuned(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _arena(lambda p: "[[A=B]]", out=tmp_path / "base")
    _arena(lambda p: "[[A>B]]" if _model_is_a(p) else "[[B>>A]]", out=tmp_path / "tuned")
    comparison = compare([tmp_path / "base", tmp_path / "tuned" / "summary.json"])
    assert comparison.same_opponent()
    assert [r.overall.score for r in comparison.runs] == [0.5, 1.0]
    assert len(comparison.improved) == 6 and comparison.worsened == []
    table = arena_compare_table(comparison)
    assert table.row_count > 4

    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(table)
    text = console.export_text()
    assert "+50.0 pts" in text and "score, category: sql" in text


def test_compare_warns_when_the_opponents_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _arena(lambda p: "[[A=B]]", out=tmp_path / "a")
    _arena(lambda p: "[[A=B]]", out=tmp_path / "b")
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    summary["judge"] = "another-judge"
    (tmp_path / "b" / "summary.json").write_text(json.dumps(summary))
    from rich.console import Console

    console = Console(record=True, width=200)
    monkeypatch.setattr("selfalign.evaluate.arena_cli.console", console)
    show_arena_comparison([tmp_path / "a", tmp_path / "b"])
    assert "not on one scale" in console.export_text()


def test_compare_refuses_a_humaneval_summary(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"benchmark": "humaneval"}))
    assert not is_arena_run(tmp_path) and not is_arena_run(tmp_path / "absent")
    with pytest.raises(ValueError, match="not an arena summary"):
        compare([tmp_path])
    _arena(lambda p: "[[A=B]]", out=tmp_path / "arena")
    assert is_arena_run(tmp_path / "arena") and is_arena_run(tmp_path / "arena" / "summary.json")


def test_the_documented_judge_prompt_is_the_one_sent() -> None:
    from selfalign.evaluate.arena_judge import JUDGE_SYSTEM

    docs = Path(__file__).parents[2] / "docs" / "evaluation.md"
    assert f"```text\n{JUDGE_SYSTEM}\n```" in docs.read_text(encoding="utf-8")


def test_compare_puts_humaneval_and_the_arena_in_one_table(tmp_path: Path) -> None:
    """`selfalign eval compare base tuned arena`: one table per model (what `make eval` shows)."""
    from click.testing import CliRunner

    from selfalign.evaluate.cli import eval_group

    for name, model, rate in (("base", BASELINE, 0.25), ("tuned", MODEL, 0.5)):
        folder = tmp_path / name
        folder.mkdir()
        summary = {"model": model, "pass_at_k": {"pass@1": rate}, "executability": 0.75}
        (folder / "summary.json").write_text(json.dumps(summary))
        (folder / "results.jsonl").write_text(json.dumps({"task_id": "t", "passed": 1}) + "\n")
    _arena(lambda p: "[[A>B]]" if _model_is_a(p) else "[[B>A]]", out=tmp_path / "arena")
    args = ["compare", str(tmp_path / "base"), str(tmp_path / "tuned"), str(tmp_path / "arena")]
    result = CliRunner().invoke(eval_group, args)
    assert result.exit_code == 0, result.output
    assert "base and tuned: HumanEval and the arena" in result.output
    rows = [ln for ln in result.output.splitlines() if "arena score vs" in ln]
    assert len(rows) == 1 and "1.00" in rows[0] and "baseline" in rows[0]
    assert any("HumanEval pass@1" in ln and "25.0%" in ln and "50.0%" in ln
               for ln in result.output.splitlines())
