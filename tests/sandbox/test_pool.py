"""Pool behaviour: streaming, bounded memory, cleanup on exit, Ctrl-C and crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from selfalign.sandbox import ProcessPool, Program, SandboxConfig, open_pool, run_programs

from .conftest import pool_containers, wait_no_containers

pytestmark = pytest.mark.docker


def test_streaming_is_bounded(docker_pool: ProcessPool) -> None:
    pulled = 0
    max_ahead = 0
    yielded = 0

    def gen() -> Iterator[Program]:
        nonlocal pulled
        for i in range(200):
            pulled += 1
            yield Program(f"s{i}", f"assert {i} + 1 == {i + 1}\n")

    for r in docker_pool.run(gen()):
        yielded += 1
        max_ahead = max(max_ahead, pulled - yielded)
        assert r.status == "pass", r
    assert yielded == 200
    limit = docker_pool.config.workers * docker_pool.config.pipeline_depth + 1
    assert max_ahead <= limit, (max_ahead, limit)


def test_docker_runners_count_processes_by_cgroup(docker_pool: ProcessPool) -> None:
    # The fast path after a job that exited by itself rests on the container's pids
    # cgroup counter (docs/sandbox.md); each runner checks that it counts exactly its
    # own processes before using it.
    assert all(w.ready_info.get("pids_counter") is True for w in docker_pool._workers)  # noqa: SLF001


def test_deep_pipeline_keeps_every_verdict_with_its_program(sandbox_image: str) -> None:
    """Depth 8: jobs queued in the runner, verdicts sent several per write."""
    progs = []
    for i in range(240):
        kind = i % 4
        code = {0: f"assert {i} == {i}\n", 1: f"raise ValueError({i})\n",
                2: f"print({i})\n", 3: "import sys\nsys.exit(3)\n"}[kind]
        progs.append(Program(f"p{i}", code))
    progs.insert(100, Program("slow", "import time\ntime.sleep(0.3)\n"))
    cfg = SandboxConfig(workers=2, image=sandbox_image, pipeline_depth=8)
    with open_pool(cfg) as pool:
        by_id = {r.id: r for r in pool.run(progs)}
        assert pool.stats["replaced"] == 0
    assert len(by_id) == len(progs)
    for i in range(240):
        r = by_id[f"p{i}"]
        kind = i % 4
        if kind == 0:
            assert r.status == "pass", r
        elif kind == 1:
            assert r.status == "fail" and r.exception == "ValueError", r
            assert f"ValueError: {i}" in r.stderr_tail
        elif kind == 2:
            assert r.status == "pass" and r.stdout_tail == f"{i}\n", r
        else:
            assert r.status == "fail" and r.exit_code == 3, r
    assert by_id["slow"].status == "pass"


def test_queued_jobs_move_to_a_sandbox_that_ran_dry(sandbox_image: str) -> None:
    """Jobs are dealt out in turn: the first sandbox gets the slow job and 20 quick
    ones queued behind it, the second 20 quick ones; once the second is idle, half of
    the first one's queue moves."""
    progs = [Program("slow", "import time\ntime.sleep(1.0)\n")]
    progs += [Program(f"q{i}", f"assert {i} >= 0\n") for i in range(40)]
    cfg = SandboxConfig(workers=2, image=sandbox_image, pipeline_depth=32)
    with open_pool(cfg) as pool:
        results = list(pool.run(progs))
        assert pool.stats["stolen"] > 0, pool.stats
        assert pool.stats["replaced"] == 0 and pool.stats["retried"] == 0
        assert all(r.attempts == 1 for r in results), results
        # the pool is still in order for the next run
        again = list(pool.run(progs[1:11]))
    assert sorted(r.id for r in results) == sorted(p.id for p in progs)
    assert all(r.status == "pass" for r in results + again), results + again


def test_verdict_fields(docker_pool: ProcessPool) -> None:
    code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nraise KeyError('k')\n"
    (r,) = list(docker_pool.run([Program("fields", code)]))
    assert r.status == "fail" and r.exception == "KeyError" and r.exit_code == 1
    assert r.stdout_tail == "out\n" and r.stderr_tail.startswith("err\n")
    assert "KeyError: 'k'" in r.stderr_tail and "job_runner.py" not in r.stderr_tail
    assert 0 < r.duration_s < 5


def test_main_module_semantics(docker_pool: ProcessPool) -> None:
    code = textwrap.dedent("""
        import dataclasses, pickle, sys, random, os
        @dataclasses.dataclass
        class P:
            x: int
        assert __name__ == "__main__" and sys.modules["__main__"].P is P
        assert pickle.loads(pickle.dumps(P(1))) == P(1)
        assert sys.stdin.read() == ""
        print(random.random())
        assert os.getcwd().startswith("/work/job-")
        assert os.environ["HOME"] == os.getcwd() == os.environ["TMPDIR"]
        # Annotations are evaluated, as with `python3 prog.py`: the runner's own
        # `from __future__ import annotations` must not leak into programs.
        def f(x: int) -> int:
            return x
        assert f.__annotations__ == {"x": int, "return": int}, f.__annotations__
    """)
    results = list(docker_pool.run([Program(f"m{i}", code) for i in range(4)]))
    assert all(r.status == "pass" for r in results), results
    # each job reseeds: forked children must not share one random stream
    assert len({r.stdout_tail for r in results}) == 4


def test_bad_programs_get_sandbox_error(docker_pool: ProcessPool) -> None:
    bad = [Program("nul", "x = 1\x00"), Program("", "pass"), Program("ok", "pass")]
    by_id = {r.id: r for r in docker_pool.run(bad)}
    assert by_id["nul"].status == "sandbox_error" and "NUL" in (by_id["nul"].reason or "")
    assert by_id[""].status == "sandbox_error"
    assert by_id["ok"].status == "pass"
    (syn,) = list(docker_pool.run([Program("syntax", "def (:\n")]))
    assert syn.status == "fail" and syn.exception == "SyntaxError"


def test_run_programs_keeps_input_order(sandbox_image: str) -> None:
    progs = [Program(str(i), f"import time\ntime.sleep({0.05 * (5 - i)})\n") for i in range(5)]
    results = run_programs(progs, SandboxConfig(workers=2, image=sandbox_image))
    assert [r.id for r in results] == [p.id for p in progs]
    assert all(r.status == "pass" for r in results)


def test_exit_removes_every_container(sandbox_image: str) -> None:
    with open_pool(SandboxConfig(workers=2, image=sandbox_image)) as pool:
        assert len(pool_containers(pool.pool_id)) == 2
    assert not wait_no_containers(pool.pool_id)


def test_exception_inside_with_removes_containers(sandbox_image: str) -> None:
    pool = open_pool(SandboxConfig(workers=1, image=sandbox_image))
    with pytest.raises(RuntimeError), pool:
        raise RuntimeError("boom")
    assert not wait_no_containers(pool.pool_id)


# The holder takes Ctrl-C as a program in a terminal does, even where the test runs in
# the background of a shell (which starts it with SIGINT ignored).
HOLDER = textwrap.dedent("""
    import json, signal, sys, time
    from selfalign.sandbox import Program, SandboxConfig, open_pool
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with open_pool(SandboxConfig(workers=2, image=sys.argv[1])) as pool:
        print(json.dumps({"pool": pool.pool_id}), flush=True)
        def forever():
            i = 0
            while True:
                i += 1
                yield Program(str(i), "import time\\ntime.sleep(0.2)\\n")
        for r in pool.run(forever()):
            pass
""")


# Clean-up runs `docker rm` per container; on a loaded machine that takes far longer
# than on a quiet one. The tests check that nothing is left, not how fast.
CLEANUP_WAIT_S = 120


def _start_holder(image: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, image], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    pool_id = json.loads(proc.stdout.readline())["pool"]
    time.sleep(1.0)
    assert len(pool_containers(pool_id)) == 2
    return proc, pool_id


def test_ctrl_c_removes_containers(sandbox_image: str) -> None:
    proc, pool_id = _start_holder(sandbox_image)
    proc.send_signal(signal.SIGINT)
    proc.wait(CLEANUP_WAIT_S)
    assert proc.returncode != 0  # interrupted, not finished
    assert not wait_no_containers(pool_id)


def test_parent_crash_removes_containers(sandbox_image: str) -> None:
    proc, pool_id = _start_holder(sandbox_image)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(CLEANUP_WAIT_S)
    # No __exit__ ran: the runners see EOF on stdin, exit, and --rm removes them.
    assert not wait_no_containers(pool_id, timeout=30)


def test_clean_removes_labelled_leftovers(sandbox_image: str) -> None:
    from selfalign.sandbox import clean

    name = f"selfalign-sbx-test-{os.getpid()}"
    subprocess.run(["docker", "run", "-d", "--name", name, "--label", "selfalign.sandbox=1",
                    "--label", "selfalign.sandbox.owner_pid=999999999", "--network", "none",
                    sandbox_image, "sleep", "60"], check=True, capture_output=True)
    removed = clean(all_containers=False)
    assert removed
    ps = subprocess.run(["docker", "ps", "-aq", "--filter", f"name={name}"],
                        capture_output=True, text=True).stdout.strip()
    assert ps == ""


def test_abandoned_run_does_not_leak_into_the_next(docker_pool: ProcessPool) -> None:
    it = docker_pool.run(Program(f"old{i}", "import time\ntime.sleep(0.1)\n") for i in range(50))
    next(it)
    del it
    results = list(docker_pool.run([Program("new", "pass\n")]))
    assert [r.id for r in results] == ["new"]


def test_a_short_run_is_spread_over_every_sandbox(docker_pool: ProcessPool) -> None:
    # Two programs, two sandboxes: one each, not both queued on the first. A sandbox is
    # told apart by the device of its own /work tmpfs.
    code = "import os\nprint(os.stat('/work').st_dev)\n"
    results = list(docker_pool.run([Program(f"where{i}", code) for i in range(2)]))
    assert all(r.status == "pass" for r in results), results
    assert len({r.stdout_tail.strip() for r in results}) == 2, results


def test_a_source_may_wait_for_its_own_results(docker_pool: ProcessPool) -> None:
    # None from the iterable means "nothing until a verdict comes back": a generator can
    # make its next program out of the previous one's output.
    seen: dict[str, str] = {}

    def source() -> Iterator[Program | None]:
        yield Program("first", "print(20 + 1)\n")
        while "first" not in seen:
            yield None
        yield Program("second", f"print({seen['first']} * 2)\n")

    for r in docker_pool.run(source()):
        assert r.status == "pass", r
        seen[r.id] = r.stdout_tail.strip()
    assert seen == {"first": "21", "second": "42"}
