"""Selection rules, dedup and pairs on verdicts written by hand (selection runs no code)."""

from __future__ import annotations

from selfalign.curate.candidates import Answer, pick
from selfalign.curate.config import PairsConfig, SelectConfig
from selfalign.curate.select import dedup_examples
from selfalign.pipeline import run_named
from selfalign.records import Attempt, Example, Verdict, stable_id
from selfalign.sandbox.verdict import is_executable
from selfalign.store import RunDir, dumps_line


def _answer(index: int, response: str, tests: str, status: str = "pass") -> Answer:
    attempt = Attempt(
        id=f"a{index}",
        parent_id="t",
        task_id="t",
        sample_index=index,
        response=response,
        solution="def f(x):\n    return x\n",
        tests=tests,
    )
    from selfalign.verify.static_tests import analyse_tests

    answer = Answer(attempt, Verdict(id=f"v{index}", parent_id=f"a{index}", status=status))
    answer.analysis = analyse_tests(tests, attempt.solution)
    return answer


def test_pick_rules() -> None:
    answers = [
        _answer(0, "long answer " * 10, "assert f(1) == 1\n"),
        _answer(1, "short", "assert f(1) == 1\n"),
        _answer(2, "medium answer", "assert f(1) == 1\nassert f(2) == 2\nassert f(3) == 3\n"),
    ]
    assert pick(answers, "shortest", 0, "t").attempt.id == "a1"
    assert pick(answers, "most_asserts", 0, "t").attempt.id == "a2"
    chosen = {pick(answers, "random", 0, "t").attempt.id for _ in range(5)}
    assert len(chosen) == 1  # seeded per task: the same pick every time
    assert len({pick(answers, "random", s, "t").attempt.id for s in range(40)}) > 1


def test_executability_counts_assert_failures_only() -> None:
    assert is_executable("pass", None)
    assert is_executable("fail", "AssertionError")
    assert not is_executable("fail", "NameError")
    assert not is_executable("timeout", "Timeout")


def _example(i: int, instruction: str, response: str, solution: str) -> dict:
    return Example(
        id=f"e{i}",
        parent_id=f"t{i}",
        task_id=f"t{i}",
        solution=solution,
        messages=[
            {"role": "user", "content": instruction},
            {"role": "assistant", "content": response},
        ],
    ).to_dict()


def test_dedup_on_instructions_responses_and_code() -> None:
    words = " ".join(f"word{i}" for i in range(60))
    examples = [
        _example(0, "Write a parser for dates.", "Answer A " + words, "def a():\n    return 1\n"),
        _example(1, "Write  a parser for dates.", "Answer B", "def b():\n    return 2\n"),
        _example(2, "Sort a list of tuples " + words, "Answer C", "def c():\n    return 3\n"),
        _example(3, "Sort a list of tuples " + words + " quickly", "Answer D", "def d(): 4\n"),
        _example(4, "Reverse a string.", "Answer A " + words, "def e():\n    return 5\n"),
        _example(5, "Count vowels.", "Answer F", "def a():\n    return 1\n"),
    ]
    kept, rejections = dedup_examples(examples, SelectConfig())
    assert [e["id"] for e in kept] == ["e0", "e2"]
    reasons = {r.id: r.reason for r in rejections}
    assert reasons == {
        "t1": "duplicate_instruction",
        "t3": "near_duplicate_instruction",
        "t4": "duplicate_response",
        "t5": "duplicate_code",
    }
    assert all("e0" in r.detail or "e2" in r.detail for r in rejections)


def _write(run: RunDir, stage: str, records: list) -> None:
    store = run.stage(stage)
    store.dir.mkdir(parents=True, exist_ok=True)
    (store.dir / "part-00000.jsonl").write_text("".join(dumps_line(r.to_dict()) for r in records))
    store.mark_success()


def test_select_resumes_and_pairs_follow_the_data_set(run_dir: RunDir) -> None:
    attempts, verdicts = [], []
    for t in range(6):
        for s, status in enumerate(("pass", "fail", "timeout")):
            aid = stable_id("attempt", t, s)
            attempts.append(
                Attempt(
                    id=aid,
                    parent_id=f"task{t}",
                    task_id=f"task{t}",
                    sample_index=s,
                    instruction=f"Task number {t}: compute the value {t * 7} for the input.",
                    response=f"answer {t} {s}",
                    solution=f"def f{t}():\n    return {t}\n",
                    tests=f"assert f{t}() == {t}\n",
                )
            )
            verdicts.append(
                Verdict(
                    id=f"v{aid}", parent_id=aid, attempt_id=aid, task_id=f"task{t}", status=status
                )
            )
    _write(run_dir, "attempts", attempts)
    _write(run_dir, "verdicts", verdicts)
    cfg = {
        "select": SelectConfig(batch_size=2),
        "pairs": PairsConfig(sources=["execution"], per_task=2),
    }
    examples = run_named(run_dir, "select", cfg)
    assert examples.written == 6 and examples.read == 6
    assert run_named(run_dir, "pairs", cfg).written == 12
    pairs = list(run_dir.stage("pairs").read())
    assert {p["rejected_status"] for p in pairs} == {"fail", "timeout"}
    assert all(
        p["chosen_status"] == "pass" and p["preference_source"] == "execution" for p in pairs
    )

    # A complete selection is not redone; --force redoes it with the same result, and
    # the pairs made from the old selection are stale: they are made again.
    assert run_named(run_dir, "select", cfg).runs == 1
    run_named(run_dir, "select", cfg, force=True)
    assert sorted(e["id"] for e in run_dir.stage("examples").read()) == sorted(
        stable_id("example", f"task{t}", stable_id("attempt", t, 0)) for t in range(6)
    )
    again = run_named(run_dir, "pairs", cfg)
    assert again.written == 12 and again.runs == 1


def test_malformed_input_records_are_rejected_with_their_detail(run_dir: RunDir) -> None:
    attempt = Attempt(id="a0", parent_id="t0", task_id="t0", response="r", solution="x = 1\n",
                      tests="assert x == 1\n")
    verdict = Verdict(id="v0", parent_id="a0", attempt_id="a0", task_id="t0", status="pass")
    _write(run_dir, "attempts", [attempt])
    _write(run_dir, "verdicts", [verdict])
    store = run_dir.stage("verdicts")
    with (store.dir / "part-00000.jsonl").open("a") as handle:
        handle.write('{"id": "v-broken", "status": "pass"}\n')  # no parent_id
    stats = run_named(run_dir, "select")
    assert stats.dropped["malformed_input"] == 1
    row = next(r for r in run_dir.stage("examples").read_rejected() if r["id"] == "v-broken")
    assert row["reason"] == "malformed_input"
    assert "verdicts" in row["detail"] and "parent_id" in row["detail"]
    # A resumed or repeated run does not count it twice.
    again = run_named(run_dir, "select", force=True)
    assert again.dropped["malformed_input"] == 1
