"""A small hand-written run: tasks and attempts whose fate through execute -> select ->
export is known in advance (passing, failing, timing out, vacuous, duplicate,
contaminated, unparsed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

from selfalign.records import Attempt, Task, stable_id
from selfalign.store import RunDir, dumps_line

ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n"
HUMANEVAL_0 = (
    "Check if in given list of numbers, are any two numbers closer to each other than "
    "given threshold. Write has_close_elements(numbers, threshold)."
)


def _response(solution: str, tests: str) -> str:
    return f"Here is the solution.\n\n```python\n{solution}```\n\nTests:\n\n```python\n{tests}```\n"


@dataclass
class HandRun:
    """The run and the ids each check expects."""

    run: RunDir
    tasks: dict[str, Task] = field(default_factory=dict)
    attempts: dict[str, Attempt] = field(default_factory=dict)

    def task_id(self, name: str) -> str:
        return self.tasks[name].id

    def attempt_id(self, name: str) -> str:
        return self.attempts[name].id


def _task(name: str, instruction: str, category: str, difficulty: str) -> Task:
    return Task(
        id=stable_id("task", name),
        parent_id=stable_id("concepts", name),
        seed_id=stable_id("seed", name),
        concepts=[f"concept of {name}"],
        category=category,
        difficulty=difficulty,
        instruction=instruction,
    )


def _attempt(
    task: Task, index: int, solution: str, tests: str, parse_error: str | None = None
) -> Attempt:
    return Attempt(
        id=stable_id("attempt", task.id, index),
        parent_id=task.id,
        task_id=task.id,
        seed_id=task.seed_id,
        sample_index=index,
        instruction=task.instruction,
        response=_response(solution, tests),
        solution=solution,
        tests=tests,
        parse_error=parse_error,
        finish_reason="stop",
    )


def write_hand_run(run: RunDir) -> HandRun:
    """Write ``tasks`` and ``attempts`` stages (complete) for the end-to-end tests."""
    hand = HandRun(run)
    t = {
        "add": _task("add", "Write a function add(a, b) that returns the sum.", "function", "easy"),
        "never": _task(
            "never", "Write is_even(n) telling whether n is even.", "function", "medium"
        ),
        "slow": _task("slow", "Write a program with square(n) that squares n.", "program", "hard"),
        "vacuous": _task("vacuous", "Write a Stack class with push and pop.", "class", "medium"),
        "dup": _task("dup", "Write a function add(a, b) that returns the sum.", "function", "hard"),
        "contam": _task("contam", HUMANEVAL_0, "function", "medium"),
        "unparsed": _task(
            "unparsed", "Write triple(x) returning three times x.", "function", "easy"
        ),
        "unit": _task(
            "unit", "Implement reverse_words(s) that reverses the order of words.", "class", "easy"
        ),
    }
    hand.tasks = t
    a = {
        # passes; a failing sibling makes a pair; an identical program runs once.
        "add_pass": _attempt(t["add"], 0, ADD, ADD_TESTS),
        "add_fail": _attempt(t["add"], 1, "def add(a, b):\n    return a - b\n", ADD_TESTS),
        "add_same": _attempt(t["add"], 2, ADD, ADD_TESTS),
        "never_fail": _attempt(
            t["never"], 0, "def is_even(n):\n    return n % 2 == 1\n", "assert is_even(2)\n"
        ),
        # a timing-out answer (rejected side) and a passing one whose solution has a
        # __main__ block reading stdin (removed by the assembly rule).
        "slow_timeout": _attempt(
            t["slow"],
            0,
            "def square(n):\n    while True:\n        pass\n",
            "assert square(3) == 9\n",
        ),
        "slow_pass": _attempt(
            t["slow"],
            1,
            "def square(n):\n    return n * n\n\n\nif __name__ == '__main__':\n"
            "    print(square(int(input())))\n",
            "assert square(3) == 9\nassert square(-2) == 4\n",
        ),
        "vacuous_pass": _attempt(
            t["vacuous"],
            0,
            "class Stack:\n    def __init__(self):\n        self.items = []\n"
            "    def push(self, x):\n        self.items.append(x)\n",
            "s = Stack()\ns.push(1)\nassert True\n",
        ),
        "dup_pass": _attempt(
            t["dup"], 0, "def add(x, y):\n    return y + x\n", "assert add(2, 2) == 4\n"
        ),
        "contam_pass": _attempt(
            t["contam"],
            0,
            "def has_close_elements(numbers, threshold):\n    return False\n",
            "assert has_close_elements([], 0.5) is False\n",
        ),
        "unparsed_pass": _attempt(
            t["unparsed"],
            0,
            "def triple(x):\n    return 3 * x\n",
            "assert triple(2) == 6\n",
            parse_error="no tests section",
        ),
        # unittest style: unittest.main() must not turn a pass into SystemExit, and a
        # failing test case must fail the program.
        "unit_pass": _attempt(
            t["unit"],
            0,
            "def reverse_words(s):\n    return ' '.join(reversed(s.split()))\n",
            "import unittest\n\n\nclass T(unittest.TestCase):\n"
            "    def test_two(self):\n        self.assertEqual(reverse_words('a b'), 'b a')\n\n\n"
            "if __name__ == '__main__':\n    unittest.main()\n",
        ),
        "unit_fail": _attempt(
            t["unit"],
            1,
            "def reverse_words(s):\n    return s\n",
            "import unittest\n\n\nclass T(unittest.TestCase):\n"
            "    def test_two(self):\n        self.assertEqual(reverse_words('a b'), 'b a')\n\n\n"
            "if __name__ == '__main__':\n    unittest.main()\n",
        ),
        # pytest style: the test function is never called by the tests themselves.
        "unit_pytest_fail": _attempt(
            t["unit"],
            2,
            "def reverse_words(s):\n    return s[::-1]\n",
            "def test_reverse():\n    assert reverse_words('ab cd') == 'cd ab'\n",
        ),
    }
    hand.attempts = a
    for stage, records in (("tasks", t.values()), ("attempts", a.values())):
        store = run.stage(stage)
        store.dir.mkdir(parents=True, exist_ok=True)
        (store.dir / "part-00000.jsonl").write_text(
            "".join(dumps_line(r.to_dict()) for r in records)
        )
        store.mark_success()
    return hand


@pytest.fixture
def hand_run(run_dir: RunDir) -> HandRun:
    return write_hand_run(run_dir)


@pytest.fixture(scope="session")
def sandbox_image() -> str:
    """The sandbox image: $SELFALIGN_TEST_IMAGE, else the current build (built if missing)."""
    image = os.environ.get("SELFALIGN_TEST_IMAGE")
    if image:
        return image
    from selfalign.sandbox import SandboxUnavailable, ensure_image

    try:
        return ensure_image()
    except SandboxUnavailable as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no sandbox: {exc}")
