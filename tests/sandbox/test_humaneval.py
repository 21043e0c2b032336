"""Acceptance: the 164 HumanEval canonical programs pass, broken variants fail."""

from __future__ import annotations

import collections

import pytest

from selfalign.sandbox import ProcessPool
from selfalign.sandbox.humaneval import broken_programs, canonical_programs, load_problems

pytestmark = pytest.mark.docker


def test_humaneval_canonical_pass_and_broken_fail(docker_pool: ProcessPool) -> None:
    problems = load_problems()
    assert len(problems) == 164
    progs = canonical_programs(problems) + broken_programs(problems)
    results = list(docker_pool.run(progs))
    assert sorted(r.id for r in results) == sorted(p.id for p in progs)
    wrong = [(r.id, r.status, r.exception, r.stderr_tail[-300:]) for r in results
             if r.status != ("fail" if r.id.endswith("/broken") else "pass")]
    assert not wrong, wrong
    counts = collections.Counter(r.status for r in results)
    assert counts == {"pass": 164, "fail": 164}
    for r in results:
        assert r.duration_s > 0 and r.attempts == 1
        if r.status == "fail":
            assert r.exception and r.exit_code == 1 and "Traceback" in r.stderr_tail
