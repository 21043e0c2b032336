"""The execution reward on real Docker: hostile completions score 0 or None and the pool
keeps serving; honest ones score 1; partial credit; screening of the fixture's tasks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfalign.sandbox import SandboxConfig, SandboxUnavailable
from selfalign.train.data import load_training_data
from selfalign.train.rewards import ExecutionReward
from selfalign.train.sandbox_session import SandboxSession
from selfalign.train.screen import screen_tasks

pytestmark = pytest.mark.docker

FIXTURE = Path(__file__).parents[1] / "fixtures" / "grpo" / "dataset"
TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\nassert add(10, 5) == 15\n"
TIMEOUT_S = 3.0


def answer(code: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": f"```python\n{code}\n```\n"}]


HOSTILE = {
    "fork-bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
    "        pass\n",
    "infinite-loop": "def add(a, b):\n    while True:\n        pass\n",
    "sleep-past-the-limit": "import time\ndef add(a, b):\n    time.sleep(60)\n",
    "stdout-flood": "while True:\n    print('x' * 10000)\n",
    "stderr-flood": "import sys\nwhile True:\n    sys.stderr.write('y' * 10000)\n",
    "memory-bomb": "def add(a, b):\n    return ['x' * 10**6 for _ in range(10**5)]\n",
    "sys-exit-before-tests": "import sys\ndef add(a, b):\n    return 0\nsys.exit(0)\n",
    "os-exit-before-tests": "import os\ndef add(a, b):\n    return 0\nos._exit(0)\n",
    "raise-systemexit": "def add(a, b):\n    raise SystemExit(0)\n",
    "atexit-exit-zero": "import atexit, os\natexit.register(lambda: os._exit(0))\n"
    "def add(a, b):\n    return 0\n",
    "always-equal": "class Anything:\n    def __eq__(self, other):\n        return True\n"
    "def add(a, b):\n    return Anything()\n",
    "reads-its-own-file": "def add(a, b):\n    import re\n"
    "    src = open(__file__).read()\n"
    "    return int(re.findall(r'add\\(%d, %d\\) == (-?\\d+)' % (a, b), src)[0])\n",
    "swallows-assertions": "import builtins\n"
    "builtins.AssertionError = type('E', (Exception,), {})\ndef add(a, b):\n    return 0\n",
    # Caught by the verifier's static check too (its own file by name, a reflexive __eq__)
    # where it can, by changed expectations where it cannot:
    "self-equal": "class Anything:\n    def __eq__(self, other):\n        return other == other\n"
    "def add(a, b):\n    return Anything()\n",
    "reads-prog-py": "def add(a, b):\n    import re\n    src = open('prog.py').read()\n"
    "    return int(re.findall(r'add\\(%d, %d\\) == \\(?(-?\\d+)' % (a, b), src)[0])\n",
    "kills-everything": "import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n",
}

HONEST = {
    "plain": "def add(a, b):\n    return a + b\n",
    "with-a-main-block": "def add(a, b):\n    return sum((a, b))\n\n"
    "if __name__ == '__main__':\n    print(add(int(input()), 1))\n",
    "with-prints": "def add(a, b):\n    print('adding', a, b)\n    return a + b\n",
}


@pytest.fixture(scope="module")
def session() -> Iterator[SandboxSession]:
    from selfalign.sandbox.image import build_image, check_docker

    try:
        check_docker()
        image = build_image()
    except SandboxUnavailable as exc:
        if os.environ.get("SELFALIGN_REQUIRE_DOCKER") == "1":
            pytest.fail(f"SELFALIGN_REQUIRE_DOCKER=1 but Docker is unavailable: {exc}")
        pytest.skip(f"Docker sandbox unavailable: {exc}")
    config = SandboxConfig(workers=2, timeout_s=TIMEOUT_S, memory_mb=256, image=image)
    with SandboxSession(config) as s:
        yield s


def test_hostile_completions_score_zero_and_the_pool_keeps_serving(
    session: SandboxSession,
) -> None:
    reward = ExecutionReward(session)
    names = sorted(HOSTILE)
    scores = reward([None] * len(names), [answer(HOSTILE[n]) for n in names], [TESTS] * len(names))
    by_name = dict(zip(names, scores, strict=True))
    assert all(s in (0.0, None) for s in scores), by_name
    # The sandbox stopped most by its limits or its pass rule (exits before the end of
    # the tests fail); what games its tests is never scored 1.
    statuses = reward.totals.statuses
    assert statuses["timeout"] >= 3 and statuses["output_limit"] >= 2, statuses
    # Gaming is counted, whether seen statically (never run) or by changed expectations.
    reasons = reward.totals.gaming_reasons
    assert reward.totals.gamed == 5, reasons
    assert {"always_equal", "reads_own_file", "patches_builtins"} <= set(reasons), reasons
    allowed = {"always_equal", "reads_own_file", "patches_builtins", "expected_ignored"}
    assert set(reasons) <= allowed, reasons
    static = sum(n for r, n in reasons.items() if r != "expected_ignored")
    assert reward.totals.programs == len(names) - static
    assert statuses["pass"] == reasons.get("expected_ignored", 0), statuses

    pool = session.pool
    honest = sorted(HONEST)
    after = reward([None] * len(honest), [answer(HONEST[n]) for n in honest], [TESTS] * 3)
    assert after == [1.0, 1.0, 1.0]
    assert session.pool is pool and session.opened == 1  # the same warm pool
    assert reward.totals.sandbox_errors == 0


def test_partial_credit_counts_the_asserts_that_pass(session: SandboxSession) -> None:
    reward = ExecutionReward(session, partial_credit=True)
    wrong_sign = "def add(a, b):\n    return a + b if a >= 0 else a - b\n"
    scores = reward([None] * 2, [answer(wrong_sign), answer(HONEST["plain"])], [TESTS] * 2)
    assert scores == [pytest.approx(2 / 3), 1.0]
    assert reward.totals.programs == 6


def test_screening_drops_weak_and_broken_tasks(session: SandboxSession) -> None:
    data = load_training_data(FIXTURE, "tasks")
    assert data.used == 10
    counts = screen_tasks(data, session)
    assert counts == {"weak_tests:null_passes": 1, "reference_fails": 1}
    kept = {r["task_id"] for r in data.rows}
    assert "task-weak-first_char" not in kept and "task-broken-double" not in kept
    assert len(kept) == 8
