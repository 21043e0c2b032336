"""The strength harness, run on the host with python3 (our own programs), and the
verifier's decisions through a host runner. The sandbox runs are in test_verify_corpus."""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from selfalign.curate.program import assemble
from selfalign.sandbox import ExecResult, ProcessPool, Program, SandboxConfig
from selfalign.verify import Candidate, StrengthConfig, Verifier
from selfalign.verify import harness_main as H
from selfalign.verify import verifier as V
from selfalign.verify.verifier import program_parts

SOURCE = Path(H.__file__).read_text(encoding="utf-8")


def run_host(code: str, tmp: Path, timeout: float = 60) -> ExecResult:
    """Run one program like the sandbox would judge it (exit 0 = pass), without a sandbox."""
    path = tmp / "prog.py"
    path.write_text(code)
    cp = subprocess.run(
        [sys.executable, str(path)], cwd=tmp, capture_output=True, text=True, timeout=timeout
    )
    return ExecResult(
        id="x",
        status="pass" if cp.returncode == 0 else "fail",
        exit_code=cp.returncode,
        duration_s=0.01,
        stdout_tail=cp.stdout[-4096:],
        stderr_tail=cp.stderr[-2000:],
    )


def payload(cands: list[dict[str, Any]], budget: float = 20.0, scratch: tuple = ()) -> str:
    data = {"budget_s": budget, "candidates": cands, "scratch": list(scratch)}
    return base64.b64encode(zlib.compress(json.dumps(data).encode())).decode()


def harness_output(result: ExecResult) -> list[dict]:
    assert result.passed, result.stderr_tail
    line = result.stdout_tail.strip().splitlines()[-1]
    assert line.startswith(H.MARKER)
    return json.loads(line[len(H.MARKER) :])


def harness(tmp: Path, cands: list[dict[str, Any]], budget: float = 20.0) -> list[dict]:
    return harness_output(run_host(SOURCE + f"\n_main({payload(cands, budget)!r})\n", tmp))


def cand(
    key: str,
    body: str,
    rest: str,
    runs: list[dict[str, str]],
    *,
    null: int | None = None,
    muts: list[int] | None = None,
    need: int = 1,
    wall: float = 2.0,
    cpu: float = 0.5,
    modules: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    return {
        "key": key,
        "body": body,
        "rest": rest,
        "runs": runs,
        "cpu_s": cpu,
        "wall_s": wall,
        "modules": list(modules),
        "plan": {
            "null": null,
            "perts": [],
            "muts": muts or [],
            "need": need,
            "early_stop": True,
            "weak_without_mutants": False,
            **extra,
        },
    }


ADD = "def add(a, b):\n    return a + b\n"
TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n"


def test_outcomes_of_variants_and_the_control(tmp_path: Path) -> None:
    runs = [
        {"body": "def add(a, b):\n    return None\n"},  # null: fails
        {"body": "def add(a, b):\n    return a - b\n"},  # killed (F)
        {"body": "def add(a, b):\n    while True:\n        pass\n"},  # CPU limit (T)
        {"body": "import sys\ndef add(a, b):\n    sys.exit(0)\n"},  # SystemExit (X)
        {"body": "def add(a, b):\n    return b + a\n"},  # survives (P)
    ]
    [out] = harness(
        tmp_path,
        [
            cand(
                "k", ADD, TESTS, runs, null=0, muts=[1, 2, 3, 4], need=3, cpu=0.05, early_stop=False
            )
        ],
    )
    assert out["out"] == "FFTXP" and out["control"] == "P" and out["null_exc"] == "AssertionError"


def test_early_stop_and_null_passing(tmp_path: Path) -> None:
    weak = "try:\n    assert add(1, 2) == 3\nexcept AssertionError:\n    pass\n"
    runs = [
        {"body": "def add(a, b):\n    return None\n"},
        {"body": "def add(a, b):\n    return a - b\n"},
    ]
    outs = harness(
        tmp_path,
        [
            cand("weak", ADD, weak, runs, null=0, muts=[1]),
            cand("strong", ADD, TESTS, runs, null=0, muts=[1], need=1),
        ],
    )
    assert outs[0]["out"] == "P-" and outs[0]["control"] == "-"  # decided weak: stop
    assert outs[1]["out"] == "FF" and outs[1]["control"] == "P"


def test_hangs_and_crashes_are_killed_and_the_next_variant_gets_a_fresh_child(
    tmp_path: Path,
) -> None:
    runs = [
        {"body": "import time\ndef add(a, b):\n    time.sleep(30)\n"},  # wall limit
        {"body": "import os\ndef add(a, b):\n    os._exit(0)\n"},  # the child dies
        {"body": "def add(a, b):\n    return a * b\n"},
    ]
    [out] = harness(tmp_path, [cand("k", ADD, TESTS, runs, muts=[0, 1, 2], need=3, wall=0.5)])
    # The hang was the child's first variant, so it counts; the crash came after it in a
    # fresh child, first again; the last one ran in a third child.
    assert out["out"] == "TCF" and out["control"] == "P" and out["children"] == 3


def test_state_left_by_a_variant_is_put_back(tmp_path: Path) -> None:
    sneaky = (
        "import builtins, os, sys, json\nbuiltins.len = lambda x: 0\n"
        "os.environ['LEAK'] = '1'\njson.dumps = None\nsys.leak = 1\n"
        "open('/tmp/never-here', 'w') if False else None\n"
        "def add(a, b):\n    return a - b\n"
    )
    checks = (
        "import json, os, sys\nassert len([1]) == 1 and 'LEAK' not in os.environ\n"
        "assert json.dumps is not None and not hasattr(sys, 'leak')\n"
        "assert add(1, 2) == 3\n"
    )
    runs = [{"body": sneaky}, {"body": "def add(a, b):\n    return a + b + 0\n"}]
    [out] = harness(
        tmp_path, [cand("k", ADD, checks, runs, muts=[0, 1], need=2, modules=("json",))]
    )
    # The second variant (the original, in effect) passes: nothing leaked into it.
    assert out["out"] == "FP" and out["control"] == "-"


def test_threads_random_and_excepthook_of_a_variant_do_not_reach_the_next(
    tmp_path: Path,
) -> None:
    # The harness imports neither threading nor random itself (each costs every harness
    # program milliseconds): it must still join a variant's threads, put back its
    # threading.excepthook and reseed the random numbers it seeded.
    sneaky = (
        "import builtins, random, threading, time\nSNEAKY = True\nrandom.seed(1)\n"
        "threading.excepthook = lambda args: None\n"
        "def later():\n    time.sleep(0.2)\n    builtins.LATE = 1\n"
        "threading.Thread(target=later).start()\n" + ADD
    )
    checks = (
        "import builtins, random, threading, time\n"
        "if 'SNEAKY' not in globals():\n"
        "    time.sleep(0.3)\n"
        "    assert not hasattr(builtins, 'LATE')\n"
        "    assert threading.excepthook is threading.__excepthook__\n"
        "    drawn = random.random()\n"
        "    random.seed(1)\n"
        "    assert drawn != random.random()\n"
        "assert add(1, 2) == 3\n"
    )
    runs = [{"body": sneaky}, {"body": ADD}]
    [out] = harness(
        tmp_path, [cand("k", ADD, checks, runs, muts=[0, 1], need=2, early_stop=False)]
    )
    # Both pass: the second saw none of the first one's state (and, both mutants having
    # survived, the answer is weak without a control run).
    assert out["out"] == "PP" and out["control"] == "-"


def test_the_harness_travels_compiled_and_as_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cands = [cand("k", ADD, TESTS, [{"body": "def add(a, b):\n    return a - b\n"}], muts=[0])]
    call = f"\n_main({payload(cands)!r})\n"
    compiled = V.harness_head()
    assert repr(importlib.util.MAGIC_NUMBER) in compiled
    # An interpreter of another bytecode version compiles the source that travels too.
    monkeypatch.setattr(importlib.util, "MAGIC_NUMBER", b"\x00\x00\r\n")
    other = V.harness_head.__wrapped__()
    assert other != compiled
    (fast,) = harness_output(run_host(compiled + call, tmp_path))
    (slow,) = harness_output(run_host(other + call, tmp_path))
    assert fast == slow and fast["out"] == "F" and fast["control"] == "P"


def test_the_harness_makes_itself_non_dumpable(tmp_path: Path) -> None:
    # On the host our /proc files are our own: prctl must run.
    get_dumpable = "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    code = SOURCE + f"\nimport ctypes\n_non_dumpable()\n{get_dumpable}\n"
    assert run_host(code, tmp_path).stdout_tail.strip() == "0"


def test_variants_cannot_open_the_harness_files_in_the_sandbox(docker_pool: ProcessPool) -> None:
    # In the sandbox the harness skips prctl (the change of user id made it non-dumpable
    # already): a variant still cannot write the harness's stdout (its verdict) through
    # /proc.
    checks = (
        "import os\n"
        "try:\n"
        "    os.close(os.open(f'/proc/{os.getppid()}/fd/1', os.O_WRONLY))\n"
        "except PermissionError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('the harness stdout is open to its variants')\n"
        "assert add(1, 2) == 3\n"
    )
    cands = [cand("k", ADD, checks, [{"body": ADD}], muts=[0])]
    code = V.harness_head() + f"\n_main({payload(cands, scratch=V.SCRATCH_DIRS)!r})\n"
    (result,) = docker_pool.run([Program("dumpable", code)])
    (out,) = harness_output(result)
    assert out["out"] == "P"  # "F" had the variant opened it


def test_a_program_that_fails_inside_the_check_is_reported(tmp_path: Path) -> None:
    flaky = "import os\nassert not os.path.exists('../run'), 'sees the harness'\n"
    body = "def add(a, b):\n    return a + b\n"
    [out] = harness(
        tmp_path,
        [cand("k", body, flaky, [{"body": "def add(a, b):\n    return 0\n"}], muts=[0], need=1)],
    )
    assert out["control"] == "F"


def test_budget_stops_and_says_so(tmp_path: Path) -> None:
    runs = [{"body": "import time\ndef add(a, b):\n    time.sleep(0.4)\n    return a + b\n"}] * 4
    [out] = harness(
        tmp_path, [cand("k", ADD, TESTS, runs, muts=[0, 1, 2, 3], need=4, wall=5)], budget=0.6
    )
    assert out.get("stop") == "budget" and "-" in out["out"]


def test_next_run_decides_as_documented() -> None:
    plan = {"null": 0, "perts": [1, 2], "muts": [3, 4, 5, 6], "need": 2, "early_stop": True}
    assert H.next_run(plan, list("-------")) == 0
    assert H.next_run(plan, list("P------")) is None  # null passes
    assert H.next_run(plan, list("F------")) == 1
    assert H.next_run(plan, list("FPP----")) is None  # every expectation ignored
    assert H.next_run(plan, list("FF-----")) == 3  # one failed: on to mutants
    assert H.next_run(plan, list("FF-FF--")) is None  # 2 killed = need
    assert H.next_run(plan, list("FF-PPP-")) is None  # 3 survived > 4 - 2
    assert H.next_run(plan, list("FF-PF--")) == 5
    assert H.weak_decided(plan, list("FF-PPP-")) and not H.weak_decided(plan, list("FF-FF--"))


# -- the verifier's decisions, with programs run on the host --------------------------------


@pytest.fixture
def host_verifier(tmp_path: Path) -> Verifier:
    def run(programs: list[Program]) -> dict[str, ExecResult]:
        return {p.id: run_host(p.code, tmp_path) for p in programs}

    v = Verifier(run, StrengthConfig(mutants=6), SandboxConfig(timeout_s=10))
    v.scratch = ()  # not in a sandbox: leave the host's /tmp alone
    return v


def test_verifier_decides_and_explains(host_verifier: Verifier) -> None:
    cheat_eq = (
        "class A:\n    def __eq__(self, other):\n        return True\n\n\n"
        "def add(a, b):\n    return A()\n"
    )
    loop = (
        "def total(n):\n    i = 0\n    s = 0\n    while i < n:\n        s += i\n"
        "        i += 1\n    return s\n"
    )
    cands = [
        Candidate("honest", ADD, TESTS),
        Candidate("same", ADD, TESTS),  # identical answers are checked once
        Candidate(
            "swallow", ADD, "try:\n    assert add(1, 2) == 4\nexcept AssertionError:\n    pass\n"
        ),
        Candidate("always_eq", cheat_eq, TESTS),
        Candidate(
            "weak", "def add(a, b):\n    return a * b + 1\n", "assert isinstance(add(1, 2), int)\n"
        ),
        Candidate("fails", "def add(a, b):\n    return a - b\n", TESTS),
        Candidate("loop", loop, "assert total(4) == 6\nassert total(0) == 0\n"),
        Candidate("nothing", "def ident(x):\n    return x\n", "assert ident(5) == 5\n"),
        Candidate("no_function", "LIMIT = 3\n", "assert LIMIT == 3\n"),
    ]
    got = {v.id: v for v in host_verifier.verify(cands)}
    assert got["honest"].strength == "strong" and got["same"].strength == "strong"
    assert got["honest"].null_status == "fails" and got["honest"].mutation_score == 1.0
    assert got["honest"].control == "passed" and not got["honest"].reasons
    assert got["swallow"].reason == "vacuous_tests"
    assert {str(r).split(" (")[0] for r in got["swallow"].reasons} == {
        "vacuous_tests: swallowed",
        "weak_tests: null_passes",
    }
    assert got["always_eq"].reason == "gamed_tests"
    assert "weak_tests: expected_ignored" in {
        str(r).split(" (")[0] for r in got["always_eq"].reasons
    }
    assert got["weak"].strength == "weak" and got["weak"].mutants_survived
    assert got["fails"].strength is None and got["fails"].status == "fail"
    assert got["loop"].strength == "strong"
    assert (
        any(m["outcome"] == "timeout" for m in got["loop"].mutants_killed)
        or got["loop"].mutation_score == 1.0
    )
    # Nothing to mutate: the tests cannot be shown to check anything beyond the null.
    assert got["nothing"].null_status == "fails"
    assert [r.kind for r in got["nothing"].reasons] == ["no_mutants"]
    # No function to null: the mutants (here of the constant) decide.
    assert got["no_function"].null_status == "not_applicable"
    assert got["no_function"].strength == "strong"
    data = got["honest"].to_dict()
    assert data["strength"] == "strong" and data["reasons"] == [] and data["reason"] is None
    json.dumps(data)


def test_program_parts_is_the_assembly_rule() -> None:
    sol = "import sys\n\ndef f(x):\n    return x\n\n\nif __name__ == '__main__':\n    f(input())\n"
    for tests in (
        "assert f(1) == 1\n",
        "import unittest\nclass T(unittest.TestCase):\n"
        "    def test_a(self):\n        self.assertEqual(f(1), 1)\n",
        "",
        "def test_a():\n    assert f(2) == 2\n",
    ):
        prefix, rest = program_parts(sol, tests)
        assert prefix + rest == assemble(sol, tests).code
    assert "".join(program_parts("", "assert 1\n")) == assemble("", "assert 1\n").code


def test_config_validation_says_how_to_fix() -> None:
    with pytest.raises(ValueError, match="min_mutation_score=0.6"):
        StrengthConfig(min_mutation_score=1.5)
    with pytest.raises(ValueError, match="mutants=8"):
        StrengthConfig(mutants=-1)
    with pytest.raises(ValueError, match="known: "):
        StrengthConfig.from_dict({"mutant": 3})
    assert StrengthConfig.from_dict({"mutants": 3}).mutants == 3
    with pytest.raises(ValueError, match="tail_bytes >= 4096"):
        Verifier(lambda p: {}, sandbox=SandboxConfig(tail_bytes=10))


def test_strength_check_step_by_step(host_verifier: Verifier, tmp_path: Path) -> None:
    # The originals ran elsewhere; the check's programs go with other work in one call.
    cands = [Candidate("a", ADD, TESTS), Candidate("b", "def add(a, b):\n    return 0\n", TESTS)]
    results = {c.id: run_host(assemble(c.solution, c.tests).code, tmp_path) for c in cands}
    check = host_verifier.start([(c, results[c.id]) for c in cands])
    assert not check.done
    calls = 0
    while not check.done:
        programs = check.programs()
        other = Program("other", "print('unrelated')\n")
        ran = {p.id: run_host(p.code, tmp_path) for p in [*programs, other]}
        check.feed(ran)
        calls += 1
    assert calls == 1 and check.programs() == []
    a, b = check.verdicts()
    assert a.strength == "strong" and b.strength is None and b.status == "fail"


def test_sure_expectations_each_run_and_decide() -> None:
    # perts 1 and 2 are module-level asserts: both run even after one fails, and one
    # that passes decides the answer weak.
    plan = {"null": 0, "perts": [1, 2], "sure": [1, 2], "muts": [3, 4], "need": 1}
    assert H.next_run(plan, list("FF---")) == 2
    assert H.next_run(plan, list("FFF--")) == 3
    assert H.next_run(plan, list("FFP--")) is None
    assert H.weak_decided(plan, list("FFP--"))
    assert not H.weak_decided(plan, list("FFF--"))


def test_strength_check_takes_answers_as_they_come(host_verifier: Verifier, tmp_path: Path) -> None:
    # The execute stage adds each pass as its verdict arrives: a partly filled harness
    # program waits for more answers unless flushed, and answers that join later go in
    # the same program.
    host_verifier.config = StrengthConfig(mutants=6, max_pack=2)
    add_b = "def add(a, b):\n    return b + a\n"
    cands = [Candidate("a", ADD, TESTS), Candidate("b", add_b, TESTS)]
    results = {c.id: run_host(assemble(c.solution, c.tests).code, tmp_path) for c in cands}
    check = host_verifier.start([])
    assert check.done and check.programs() == []
    check.add(cands[0], results["a"])
    assert not check.done
    assert check.programs(flush=False) == []  # one answer: room for another
    check.add(cands[1], results["b"])
    (program,) = check.programs(flush=False)  # two answers fill max_pack=2
    assert check.programs() == [] and not check.done
    assert not check.receive("not-ours", results["a"])
    assert check.receive(program.id, run_host(program.code, tmp_path))
    assert check.done
    assert [v.strength for v in check.verdicts()] == ["strong", "strong"]


def test_an_unfinished_answer_is_sent_again_alone(host_verifier: Verifier, tmp_path: Path) -> None:
    # A harness program that returns nothing leaves its answers unfinished: each goes
    # again in a program of its own, until max_waves, then it is weak (undecided).
    host_verifier.config = StrengthConfig(mutants=6, max_waves=2)
    add_b = "def add(a, b):\n    return b + a\n"
    cands = [Candidate("a", ADD, TESTS), Candidate("b", add_b, TESTS)]
    results = {c.id: run_host(assemble(c.solution, c.tests).code, tmp_path) for c in cands}
    check = host_verifier.start([(c, results[c.id]) for c in cands])
    (packed,) = check.programs()
    check.feed({})  # lost
    alone = check.programs()
    assert len(alone) == 2 and packed.id not in {p.id for p in alone}
    first, second = alone
    check.receive(first.id, run_host(first.code, tmp_path))
    check.receive(second.id, None)  # lost again: out of waves
    assert check.done
    strengths = sorted((v.strength, [r.kind for r in v.reasons]) for v in check.verdicts())
    assert strengths == [("strong", []), ("weak", ["undecided"])]
