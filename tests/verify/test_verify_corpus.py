"""The corpus: cheating answers that pass plainly, and honest answers in varied styles.

(a) every case passes when its assembled program runs with plain python3 (our own
files, on the host); (b) through real Docker and the verifier, no cheat is strong and
every honest answer is.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from selfalign.curate.program import assemble
from selfalign.sandbox import ProcessPool
from selfalign.verify import Candidate, Verifier, pool_runner

from .conftest import Case, load_corpus

CASES = load_corpus()
# The families issue 11 names, plus the early exits and -O reruns it adds.
REQUIRED_FAMILIES = {
    "swallowed", "constant_guard", "never_called", "always_equal", "redefines_function",
    "mocks_function", "thread", "process", "signal", "skipped", "reads_own_file",
    "caller_frame", "early_exit", "atexit", "excepthook", "rerun_optimized",
}
HONEST_STYLES = {
    "plain_asserts", "unittest_main", "test_function_called", "pytest_style", "math_isclose",
    "assert_raises", "table_driven", "class_based",
}


def test_corpus_size_and_coverage() -> None:
    kinds = Counter(c.kind for c in CASES)
    assert kinds["cheats"] >= 50 and kinds["honest"] >= 12
    families = Counter(c.family for c in CASES if c.kind == "cheats")
    assert set(families) >= REQUIRED_FAMILIES, REQUIRED_FAMILIES - set(families)
    assert sum(1 for f in REQUIRED_FAMILIES if families[f] >= 2) >= len(REQUIRED_FAMILIES) - 2
    assert {c.family for c in CASES if c.kind == "honest"} >= HONEST_STYLES
    assert all(c.why and c.solution.strip() and c.tests.strip() for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_case_passes_with_plain_python(case: Case, tmp_path: Path) -> None:
    program = tmp_path / "prog.py"
    program.write_text(assemble(case.solution, case.tests).code)
    cp = subprocess.run([sys.executable, str(program)], cwd=tmp_path, capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr[-1000:]


@pytest.mark.docker
def test_no_cheat_is_strong_and_every_honest_answer_is(docker_pool: ProcessPool) -> None:
    verifier = Verifier(pool_runner(docker_pool), sandbox=docker_pool.config)
    verdicts = verifier.verify([Candidate(c.id, c.solution, c.tests) for c in CASES])
    by_id = {v.id: v for v in verdicts}
    strong_cheats = [c.id for c in CASES if c.kind == "cheats" and by_id[c.id].strong]
    weak_honest = {
        c.id: [str(r) for r in by_id[c.id].reasons] or by_id[c.id].status
        for c in CASES
        if c.kind == "honest" and not by_id[c.id].strong
    }
    assert strong_cheats == []
    assert weak_honest == {}
    for c in CASES:
        v = by_id[c.id]
        if c.kind == "cheats" and v.passed:
            # Every passing cheat says why it is not strong.
            assert v.reason in ("gamed_tests", "vacuous_tests", "weak_tests"), c.id
        if c.kind == "honest":
            assert v.null_status == "fails" and v.control == "passed", c.id
            assert v.mutation_score is not None and v.mutation_score >= 0.6, c.id
    # The strength check shared the pool: a few harness programs, not one per answer.
    assert 0 < verifier.stats["strength_programs"] < len(CASES) / 3


def test_verify_streams_and_keeps_the_order_of_its_candidates(docker_pool: ProcessPool) -> None:
    # Through a pool the check streams: answers join it as their programs pass, in
    # whatever order results come back; the verdicts still follow the input, duplicates
    # and failures included.
    honest = [c for c in CASES if c.kind == "honest"][:3]
    failing = Candidate("fails", "def f():\n    return 1\n", "assert f() == 2\n")
    items = [failing, *(Candidate(c.id, c.solution, c.tests) for c in honest)]
    items.insert(2, Candidate("again", honest[0].solution, honest[0].tests))
    runner = pool_runner(docker_pool)
    verifier = Verifier(runner, sandbox=docker_pool.config)
    verdicts = verifier.verify(items)
    assert [v.id for v in verdicts] == [c.id for c in items]
    assert [v.strength for v in verdicts] == [None, "strong", "strong", "strong", "strong"]
    assert verifier.stats["programs"] == 4  # the duplicate ran once
    # The same answers through a plain `run` callable (programs first, then the check).
    plain = Verifier(lambda programs: runner(programs), sandbox=docker_pool.config)
    assert [(v.id, v.strength) for v in plain.verify(items)] == [
        (v.id, v.strength) for v in verdicts
    ]
