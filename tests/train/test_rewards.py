"""The GRPO rewards without Docker: reading completions, the format reward, and how the
execution reward scores, zeroes gaming, retries and leaves out what the sandbox reports.

The sandbox here is a stand-in that returns given statuses (and the verifier runs its
static check only): these tests are about the reward's bookkeeping;
test_rewards_docker.py runs the same rewards, with the verifier's dynamic check, on
real Docker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest

from selfalign.sandbox import ExecResult, Program
from selfalign.train.completion import (
    called_names,
    completion_code,
    completion_text,
    format_score,
)
from selfalign.train.execution_reward import ExecutionReward, reward_strength, split_asserts
from selfalign.train.rewards import FormatReward
from selfalign.train.sandbox_session import SandboxBroken, SandboxSession
from selfalign.train.screen import stub_implementation

STATIC_ONLY = reward_strength(expectation_checks=0)

TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def block(code: str) -> str:
    return f"Here it is.\n\n```python\n{code}\n```\n"


class FakeRunner:
    """Answers each program with ``decide(program)``; records what it was asked to run."""

    def __init__(self, decide: Callable[[Program], str]) -> None:
        self.decide = decide
        self.calls: list[list[str]] = []

    def run(self, programs: Iterable[Program]) -> Iterator[ExecResult]:
        progs = list(programs)
        self.calls.append([p.id for p in progs])
        for p in progs:
            status = self.decide(p)
            if status == "sandbox_error":
                yield ExecResult.error(p.id, "injected")
            else:
                yield ExecResult(id=p.id, status=status)  # type: ignore[arg-type]


def test_completion_text_reads_strings_and_messages() -> None:
    assert completion_text("abc") == "abc"
    assert completion_text(chat("abc")) == "abc"


def test_solution_is_the_code_before_the_tests() -> None:
    text = (
        block("def add(a, b):\n    return a + b")
        + "\n### Tests\n\n```python\nassert add(1, 1) == 2\n```\n"
    )
    code = completion_code(text)
    assert code.solution.strip() == "def add(a, b):\n    return a + b"
    assert code.solution_blocks == 1 and code.closed


def test_called_names_leave_out_builtins_and_what_the_tests_define() -> None:
    tests = (
        "import math\ndef helper(x):\n    return x\n"
        "assert add(len('a'), helper(1)) == math.floor(2.5)\n"
    )
    assert called_names(tests) == {"add"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (block("def add(a, b):\n    return a + b"), 1.0),
        (block("def add(a, b):\n    return a + b") + block("print(add(1, 2))"), 0.0),
        (block("def plus(a, b):\n    return a + b"), 0.0),
        (block("def add(a, b:\n    return a + b"), 0.0),
        ("def add(a, b):\n    return a + b", 0.0),
        ("```python\ndef add(a, b):\n    return a + b\n", 0.0),
        (block("add = lambda a, b: a + b"), 1.0),
    ],
    ids=["one-block", "two-blocks", "wrong-name", "syntax-error", "no-block", "unclosed", "lambda"],
)
def test_format_score(text: str, expected: float) -> None:
    assert format_score(text, TESTS) == expected


# Solutions the verifier's static check flags: they score 0 even when the sandbox says pass.
GAMING_SOLUTIONS = {
    "always-equal": "class A:\n    def __eq__(self, other):\n        return True\n"
    "def add(a, b):\n    return A()\n",
    "always-equal-lambda": "class A:\n    __eq__ = lambda self, other: True\n"
    "def add(a, b):\n    return A()\n",
    "own-file": "def add(a, b):\n"
    "    return int(open(__file__).read().split('== ')[1].split()[0])\n",
    "argv": "import sys\ndef add(a, b):\n    return open(sys.argv[0]).read()\n",
    "caller-frame": "import sys\ndef add(a, b):\n    return sys._getframe(1).f_locals\n",
    "patch-builtins": "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n"
    "def add(a, b):\n    return 0\n",
    "sys-modules": "import sys\nsys.modules['math'] = None\ndef add(a, b):\n    return 0\n",
    "reexec": "import os, sys\nos.execv(sys.executable, ['python', '-O'])\n",
    "unittest": "import unittest\nunittest.TestCase.assertEqual = lambda *a: None\n",
}

HONEST_SOLUTIONS = {
    "plain": "def add(a, b):\n    return a + b\n",
    "eq-that-compares": "class P:\n    def __init__(self, x):\n        self.x = x\n"
    "    def __eq__(self, other):\n        return isinstance(other, P) and self.x == other.x\n"
    "def add(a, b):\n    return a + b\n",
    "sys-stdout": "import sys\ndef add(a, b):\n    sys.stdout.write(str(a))\n    return a + b\n",
    "reads-a-file": "def count_lines(path):\n    with open(path) as f:\n"
    "        return len(f.readlines())\ndef add(a, b):\n    return a + b\n",
}


def always_pass(p: Program) -> str:
    return "pass"


@pytest.mark.parametrize("name", sorted(GAMING_SOLUTIONS))
def test_gaming_solutions_score_zero_without_running(name: str) -> None:
    runner = FakeRunner(always_pass)
    reward = ExecutionReward(runner, strength=STATIC_ONLY)
    assert reward([None], [chat(block(GAMING_SOLUTIONS[name]))], [TESTS]) == [0.0]
    assert reward.totals.gamed == 1 and runner.calls == []  # never ran


@pytest.mark.parametrize("name", sorted(HONEST_SOLUTIONS))
def test_honest_solutions_that_pass_score_one(name: str) -> None:
    reward = ExecutionReward(FakeRunner(always_pass), strength=STATIC_ONLY)
    assert reward([None], [chat(block(HONEST_SOLUTIONS[name]))], [TESTS]) == [1.0]
    assert reward.totals.gamed == 0


def test_split_asserts_makes_one_program_per_assert_and_keeps_the_setup() -> None:
    tests = "import math\nx = 2\nassert add(x, 3) == 5\nassert add(\n    -1, 1\n) == 0\n"
    variants = split_asserts(tests)
    assert len(variants) == 2
    assert variants[0] == "import math\nx = 2\nassert add(x, 3) == 5\n"
    assert variants[1] == "import math\nx = 2\nassert add(\n    -1, 1\n) == 0\n"
    assert split_asserts("assert add(1, 1) == 2\n") == ["assert add(1, 1) == 2\n"]


def test_stub_implementation_defines_what_the_tests_call_as_none() -> None:
    namespace: dict[str, object] = {}
    exec(stub_implementation(TESTS), namespace)  # noqa: S102 - our own generated code
    assert namespace["add"](1, 2) is None  # type: ignore[operator]


def test_execution_reward_scores_passes_fails_gamed_and_missing_code() -> None:
    runner = FakeRunner(lambda p: "pass" if "a + b" in p.code else "fail")
    reward = ExecutionReward(runner, strength=STATIC_ONLY)
    metrics: dict[str, float] = {}
    completions = [
        chat(block("def add(a, b):\n    return a + b")),
        chat(block("def add(a, b):\n    return a - b")),
        chat(block(GAMING_SOLUTIONS["always-equal"])),
        chat("I cannot do that."),
    ]
    scores = reward([None] * 4, completions, [TESTS] * 4, log_metric=metrics.__setitem__)
    assert scores == [1.0, 0.0, 0.0, 0.0]
    assert len(runner.calls) == 1 and len(runner.calls[0]) == 2  # gamed and empty never run
    assert reward.totals.gamed == 1 and reward.totals.no_code == 1
    assert metrics["execution/pass_rate"] == 0.25 and metrics["execution/gamed"] == 1.0
    assert 0.0 <= metrics["execution/sandbox_time_share"] <= 1.0


def test_sandbox_errors_are_retried_then_left_out_everywhere() -> None:
    seen: dict[str, int] = {}

    def flaky(p: Program) -> str:
        seen[p.code] = seen.get(p.code, 0) + 1
        if "a * 1 + b" in p.code:
            return "sandbox_error"  # fails every time
        if "a + b" in p.code and seen[p.code] == 1:
            return "sandbox_error"  # fails once, then passes
        return "pass"

    runner = FakeRunner(flaky)
    reward = ExecutionReward(runner, retries=1, strength=STATIC_ONLY)
    completions = [
        chat(block("def add(a, b):\n    return a + b")),
        chat(block("def add(a, b):\n    return a * 1 + b")),
    ]
    scores = reward([None] * 2, completions, [TESTS] * 2)
    assert scores == [1.0, None]
    assert len(runner.calls) == 2 and len(runner.calls[1]) == 2
    assert reward.totals.sandbox_errors == 1 and reward.totals.retried == 2
    assert FormatReward(leader=reward)([None] * 2, completions, [TESTS] * 2) == [1.0, None]


def test_partial_credit_is_the_share_of_passing_asserts() -> None:
    # The stand-in passes the programs that keep the first assert only.
    runner = FakeRunner(lambda p: "pass" if "add(2, 3)" in p.code else "fail")
    reward = ExecutionReward(runner, partial_credit=True, strength=STATIC_ONLY)
    tests = TESTS + "assert add(0, 0) == 0\n"
    scores = reward([None], [chat(block("def add(a, b):\n    return 5"))], [tests])
    assert scores == [pytest.approx(1 / 3)]
    assert len(runner.calls[0]) == 3


def test_a_pool_that_breaks_is_replaced_and_its_programs_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import selfalign.sandbox as sandbox

    opened: list[object] = []

    class Pool:
        def __init__(self, broken: bool) -> None:
            self.broken = broken
            self.closed = False

        def __enter__(self) -> Pool:
            return self

        def __exit__(self, *exc: object) -> None:
            self.closed = True

        def run(self, programs: Iterable[Program]) -> Iterator[ExecResult]:
            progs = list(programs)
            yield ExecResult(id=progs[0].id, status="pass")
            if self.broken:
                raise sandbox.SandboxUnavailable("docker went away")
            for p in progs[1:]:
                yield ExecResult(id=p.id, status="pass")

    def fake_open_pool(config: object = None) -> Pool:
        pool = Pool(broken=not opened)
        opened.append(pool)
        return pool

    monkeypatch.setattr(sandbox, "open_pool", fake_open_pool)
    progs = [Program("a", "pass"), Program("b", "pass")]
    with SandboxSession(sandbox.SandboxConfig(workers=1), give_up_after=2) as session:
        first = {r.id: r.status for r in session.run(progs)}
        second = {r.id: r.status for r in session.run(progs)}
    assert first == {"a": "pass", "b": "sandbox_error"}
    assert second == {"a": "pass", "b": "pass"}
    assert session.opened == 2 and all(p.closed for p in opened)  # type: ignore[attr-defined]


def test_a_sandbox_that_runs_nothing_for_many_rounds_stops_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import selfalign.sandbox as sandbox

    def no_pool(config: object = None) -> object:
        raise sandbox.SandboxUnavailable("Docker is not running")

    monkeypatch.setattr(sandbox, "open_pool", no_pool)
    session = SandboxSession(sandbox.SandboxConfig(workers=1), give_up_after=3)
    reward = ExecutionReward(session, retries=0, strength=STATIC_ONLY)
    completion = [chat(block("def add(a, b):\n    return a + b"))]
    assert reward([None], completion, [TESTS]) == [None]
    assert reward([None], completion, [TESTS]) == [None]
    with pytest.raises(SandboxBroken, match="resume"):
        reward([None], completion, [TESTS])
