"""Judging a batch: one engine call plus one for retries, positions mapped back, swap,
rejections with reasons, the record's ids. A scripted judge drives the flow; that the
real judge works is test_judge_real's job."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from selfalign.judge.config import JudgeConfig
from selfalign.judge.parse import UNPARSEABLE
from selfalign.judge.prompt import JudgePrompts
from selfalign.judge.rate import (
    DUPLICATE_RESPONSE,
    EMPTY_RESPONSE,
    NO_RESPONSES,
    OVER_CAP,
    PARSE_ERROR,
    Candidate,
    JudgeTask,
    choose_candidates,
    judge_batch,
)
from selfalign.records import Judgments

from .conftest import ScriptedJudge, fair_answer, shown_responses

MODEL = "scripted:judge"


def _task(task_id: str, qualities: list[int], statuses: list[str] | None = None) -> JudgeTask:
    statuses = statuses or ["pass"] * len(qualities)
    return JudgeTask(
        task_id,
        f"Instruction of {task_id}.",
        tuple(
            Candidate(f"{task_id}-a{i}", f"answer {i} QUALITY={q}", s, i)
            for i, (q, s) in enumerate(zip(qualities, statuses, strict=True))
        ),
    )


def _prompts(cfg: JudgeConfig, mode: str = "chat") -> JudgePrompts:
    return JudgePrompts.load(cfg.prompts_dir, cfg.preferences, mode)


@pytest.mark.parametrize("mode", ["chat", "completion"])
def test_ratings_land_on_the_right_attempts_whatever_the_order(mode):
    cfg = JudgeConfig(preferences=["readability", "coding_style"])
    tasks = [_task("t1", [5, 1, 3, 2]), _task("t2", [2, 4])]
    judge = ScriptedJudge(fair_answer)
    batch = judge_batch(judge, tasks, cfg, _prompts(cfg, mode), MODEL)
    assert len(judge.calls) == 1, "all (task, preference) prompts go in one engine call"
    assert len(judge.calls[0]) == 2 * 2
    assert batch.rejections == []
    assert batch.metrics["judge_calls"] == 4 and "judge_retries" not in batch.metrics
    shuffled = 0
    for task, record in zip(tasks, batch.records, strict=True):
        assert record.parent_id == task.task_id == record.task_id
        assert record.attempt_ids == [c.attempt_id for c in task.candidates]
        for cand, entry in zip(task.candidates, record.ratings, strict=True):
            want = float(cand.response[-1])
            assert entry["attempt_id"] == cand.attempt_id
            assert entry["ratings"] == {"readability": want, "coding_style": want}
            assert entry["mean_rating"] == want
            assert entry["rationales"]["readability"] == "marker says so"
        for call in record.calls:
            assert sorted(call["order"]) == sorted(record.attempt_ids)
            shuffled += call["order"] != record.attempt_ids
            assert call["reason"] == "" and not call["retried"]
    assert shuffled, "the seeded shuffle never changed the order"


def test_the_recorded_order_is_the_order_shown():
    cfg = JudgeConfig(preferences=["readability"])
    task = _task("t1", [5, 1, 3, 2])
    judge = ScriptedJudge(fair_answer)
    record = judge_batch(judge, [task], cfg, _prompts(cfg), MODEL).records[0]
    shown = shown_responses(judge.calls[0][0])
    by_id = {c.attempt_id: c.response for c in task.candidates}
    assert shown == [by_id[a] for a in record.calls[0]["order"]]


def test_orders_and_ids_are_the_same_on_a_second_run():
    cfg = JudgeConfig(swap=True)
    tasks = [_task("t1", [5, 1, 3]), _task("t2", [2, 4])]
    one = judge_batch(ScriptedJudge(fair_answer), tasks, cfg, _prompts(cfg), MODEL)
    # A resumed run sees the tasks in other batches and another order.
    two = [
        judge_batch(ScriptedJudge(fair_answer), [t], cfg, _prompts(cfg), MODEL).records[0]
        for t in reversed(tasks)
    ][::-1]
    for a, b in zip(one.records, two, strict=True):
        assert a.id == b.id and a.prompt_hash == b.prompt_hash
        assert [c["order"] for c in a.calls] == [c["order"] for c in b.calls]
    changed = judge_batch(
        ScriptedJudge(fair_answer), tasks, replace(cfg, seed=1), _prompts(cfg), MODEL
    )
    assert changed.records[0].id != one.records[0].id
    other_judge = judge_batch(ScriptedJudge(fair_answer), tasks, cfg, _prompts(cfg), "other:m")
    assert other_judge.records[0].id != one.records[0].id


def test_swap_judges_twice_in_reverse_and_averages():
    cfg = JudgeConfig(preferences=["readability"], swap=True)
    task = _task("t1", [3, 2, 1])

    def first_bonus(prompt, call):
        # A judge with position bias: the response shown first gets one point more.
        lines = []
        for i, resp in enumerate(shown_responses(prompt), start=1):
            lines.append(f"### Response {i}\nRating: {int(resp[-1]) + (i == 1)}")
        return "\n".join(lines)

    judge = ScriptedJudge(first_bonus)
    record = judge_batch(judge, [task], cfg, _prompts(cfg), MODEL).records[0]
    assert len(judge.calls) == 1 and len(judge.calls[0]) == 2
    first, second = (c["order"] for c in record.calls)
    assert [c["round"] for c in record.calls] == [0, 1]
    assert second == first[::-1]
    for cand, entry in zip(task.candidates, record.ratings, strict=True):
        shown_first = (first[0], second[0]).count(cand.attempt_id)
        want = float(cand.response[-1]) + shown_first / 2
        assert entry["ratings"]["readability"] == want


def test_unreadable_judgments_are_retried_together_once_then_rejected():
    cfg = JudgeConfig(preferences=["readability", "coding_style"])
    tasks = [_task("t1", [4, 2]), _task("t2", [3, 5])]

    def flaky(prompt, call):
        text = json.dumps(prompt)
        if call == 1 and "Coding style" in text:
            return "I cannot rate these."  # every coding_style call fails the first time
        if "t2" in text and "Coding style" in text:
            return "Still no."  # and t2's fails again on the retry
        return fair_answer(prompt, call)

    judge = ScriptedJudge(flaky)
    batch = judge_batch(judge, tasks, cfg, _prompts(cfg), MODEL)
    assert len(judge.calls) == 2 and len(judge.calls[1]) == 2, "one retry call for both"
    retry = judge.calls[1][0]
    assert isinstance(retry, list) and retry[-1]["role"] == "assistant", "retries are prefilled"
    assert judge.params[1].temperature == cfg.retry_temperature
    assert batch.metrics["judge_retries"] == 2
    assert batch.metrics["judgments_ok_after_retry"] == 1
    assert batch.metrics[f"judgments_rejected_{UNPARSEABLE}"] == 1
    t1, t2 = batch.records
    assert all(e["ratings"]["coding_style"] is not None for e in t1.ratings)
    style = next(c for c in t1.calls if c["preference"] == "coding_style")
    assert style["retried"] and style["first_reason"] == UNPARSEABLE
    assert style["first_raw_output"] == "I cannot rate these."
    assert style["raw_output"].startswith("### Response 1\nRating:")
    assert t2.rejected == [
        {
            "preference": "coding_style",
            "round": 0,
            "reason": UNPARSEABLE,
            "detail": "no rating found in any known shape",
        }
    ]
    for entry in t2.ratings:
        assert entry["ratings"]["coding_style"] is None
        assert entry["ratings"]["readability"] is not None
        assert entry["mean_rating"] == entry["ratings"]["readability"]
    assert batch.metrics["ratings_missing"] == 2


def test_choose_candidates_caps_alternating_pass_and_fail():
    cands = [
        Candidate("p0", "pass zero", "pass", 0),
        Candidate("p1", "pass one", "pass", 1),
        Candidate("p2", "pass two", "pass", 2),
        Candidate("f3", "fail three", "fail", 3),
        Candidate("e4", "   ", "fail", 4),
        Candidate("d5", "pass  zero", "pass", 5),
        Candidate("x6", "broken", "fail", 6, parse_error="no_code"),
        Candidate("f7", "fail seven", "timeout", 7),
    ]
    kept, skipped = choose_candidates(cands, JudgeConfig(max_responses=3))
    assert [c.attempt_id for c in kept] == ["p0", "p1", "f3"]
    reasons = {s["attempt_id"]: s["reason"] for s in skipped}
    assert reasons == {
        "e4": EMPTY_RESPONSE,
        "d5": DUPLICATE_RESPONSE,
        "x6": PARSE_ERROR,
        "p2": OVER_CAP,
        "f7": OVER_CAP,
    }
    kept, _ = choose_candidates(cands, JudgeConfig(max_responses=10, skip_parse_errors=False))
    assert "x6" in [c.attempt_id for c in kept]


def test_a_task_with_nothing_to_judge_is_rejected_with_its_reason():
    cfg = JudgeConfig(preferences=["readability"])
    empty = JudgeTask("t0", "x", (Candidate("a", "", "pass"),))
    none = JudgeTask("t9", "x", ())
    judge = ScriptedJudge(fair_answer)
    batch = judge_batch(judge, [empty, none, _task("t1", [3])], cfg, _prompts(cfg), MODEL)
    assert [(r.id, r.reason) for r in batch.rejections] == [
        ("t0", NO_RESPONSES),
        ("t9", NO_RESPONSES),
    ]
    assert batch.rejections[0].detail == "empty_response 1"
    assert [r.task_id for r in batch.records] == ["t1"]
    assert batch.records[0].ratings[0]["ratings"]["readability"] == 3.0
    assert judge_batch(judge, [none], cfg, _prompts(cfg), MODEL).records == []


def test_the_record_round_trips_and_loads_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    cfg = JudgeConfig(swap=True, max_responses=2)

    def half_broken(prompt, call):
        return "nothing" if "Readability" in json.dumps(prompt) else fair_answer(prompt, call)

    tasks = [_task("t1", [5, 1, 3], ["pass", "fail", "pass"]), _task("t2", [2, 4])]
    batch = judge_batch(ScriptedJudge(half_broken), tasks, cfg, _prompts(cfg), MODEL)
    path = tmp_path / "part-00000.jsonl"
    path.write_text("".join(r.to_json() + "\n" for r in batch.records))
    for record in batch.records:
        assert Judgments.from_dict(json.loads(record.to_json())) == record
    ds = datasets.load_dataset("json", data_files=str(path), split="train")
    assert ds.num_rows == 2 and ds[0]["task_id"] == "t1"
    assert ds[0]["skipped"][0]["reason"] == OVER_CAP
    assert ds[0]["ratings"][0]["ratings"]["readability"] is None
    assert ds[1]["ratings"][1]["ratings"]["coding_style"] == 4.0
