"""Adversarial programs, each followed by benign jobs on the same (one-container) pool.

The pool has one container, so every benign job runs in the very sandbox the
attack ran in; the probe checks that nothing of the attack is left (processes,
files, shared memory). Unless the test says otherwise, the runner must have
survived untouched: the pool did not need to replace its container.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from selfalign.sandbox import ExecResult, ProcessPool, Program, SandboxConfig, open_pool
from selfalign.sandbox._pool import WATCHDOG_GRACE_S
from selfalign.sandbox.humaneval import canonical_programs

from .conftest import wait_no_containers

pytestmark = pytest.mark.docker

PROBE = r'''
import os
me, mypid = os.getuid(), os.getpid()
others = []
for p in os.listdir("/proc"):
    if p.isdigit() and int(p) != mypid:
        try:
            st = open(f"/proc/{p}/status").read()
        except OSError:
            continue
        uid = int(st.split("Uid:")[1].split()[0])
        if uid == me and "\nState:\tZ" not in st:
            others.append((p, st.splitlines()[0]))
assert not others, f"leftover processes: {others}"
here = os.path.basename(os.getcwd())
assert os.listdir("/work") == [here], os.listdir("/work")
assert os.listdir(".") == ["prog.py"], os.listdir(".")
assert os.listdir("/tmp") == [], os.listdir("/tmp")
assert os.listdir("/dev/shm") == [], os.listdir("/dev/shm")
assert me != 0
'''

BENIGN = canonical_programs()[:2]
_n = 0


@pytest.fixture(scope="module", params=[1, 8], ids=["depth1", "depth8"])
def adv_pool(sandbox_image: str, request: pytest.FixtureRequest) -> Iterator[ProcessPool]:
    # A small memory limit keeps the memory bombs quick (page faults are slow on
    # small CI machines); everything else uses the defaults. Depth 1 runs each job
    # alone; depth 8 queues the probe and the benign jobs behind the attack in the
    # same runner, with verdicts sent in batches.
    cfg = SandboxConfig(workers=1, timeout_s=2, memory_mb=256, image=sandbox_image,
                        pipeline_depth=request.param)
    pool = open_pool(cfg)
    with pool:
        yield pool
    left = wait_no_containers(pool.pool_id)
    assert not left, f"containers left after the adversarial suite: {left}"
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert pool.pool_id not in ps, "a docker CLI process of the pool is still running"


def attack(pool: ProcessPool, code: str, *, may_replace: bool = False) -> ExecResult:
    """Run ``code``, then the cleanliness probe and two HumanEval programs."""
    global _n
    _n += 1
    replaced = pool.stats["replaced"]
    progs = [Program(f"attack-{_n}", code), Program(f"probe-{_n}", PROBE),
             *[Program(f"{p.id}-{_n}", p.code) for p in BENIGN]]
    results = {r.id: r for r in pool.run(progs)}
    assert len(results) == len(progs)
    for p in progs[1:]:
        r = results[p.id]
        assert r.status == "pass", (p.id, r)
    if not may_replace:
        assert pool.stats["replaced"] == replaced, "the attack forced a container replacement"
    return results[progs[0].id]


def test_fork_bomb(adv_pool: ProcessPool) -> None:
    r = attack(adv_pool, "import os\nwhile True:\n    try:\n        os.fork()\n"
                         "    except OSError:\n        pass\n")
    assert r.status in ("timeout", "fail"), r


def test_memory_bomb(adv_pool: ProcessPool) -> None:
    r = attack(adv_pool, "x = []\nwhile True:\n    x.append(bytearray(50 * 1024 * 1024))\n")
    assert r.status == "memory" and r.exception == "MemoryError", r


def test_memory_bomb_in_children(adv_pool: ProcessPool) -> None:
    # Four processes of 200 MB each exceed the container's 256+256 MiB: the OOM
    # killer must take job processes, never the runner.
    code = ("import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        break\n"
            "x = bytearray(200 * 1024 * 1024)\nfor i in range(0, len(x), 4096):\n    x[i] = 1\n"
            "time.sleep(5)\n")
    r = attack(adv_pool, code, may_replace=True)
    assert r.status in ("memory", "timeout", "fail"), r


def test_infinite_loop(adv_pool: ProcessPool) -> None:
    r = attack(adv_pool, "while True:\n    pass\n")
    assert r.status == "timeout" and 1.9 < r.duration_s < 4, r


def test_cpu_loop_ignoring_signals(adv_pool: ProcessPool) -> None:
    code = ("import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, "
            "signal.SIGXCPU, signal.SIGALRM, signal.SIGUSR1):\n"
            "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    pass\n")
    r = attack(adv_pool, code)
    assert r.status == "timeout", r


def test_background_child_writes_after_the_end(adv_pool: ProcessPool) -> None:
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        time.sleep(1)\n        open('/work/leak', 'w').write('x')\n"
            "        open('/tmp/leak', 'w').write('x')\n    os._exit(0)\n")
    r = attack(adv_pool, code)
    assert r.status == "pass", r
    time.sleep(1.5)  # the write would have happened by now
    after = list(adv_pool.run([Program("probe-later", PROBE)]))
    assert after[0].status == "pass", after[0]


def test_kill_the_runner(adv_pool: ProcessPool) -> None:
    code = ("import os, signal, errno\ndenied = 0\n"
            "for pid in (1, os.getppid()):\n    for sig in (signal.SIGKILL, signal.SIGSTOP):\n"
            "        try:\n            os.kill(pid, sig)\n        except PermissionError:\n"
            "            denied += 1\n"
            "assert denied == 4, denied\n"
            "try:\n    open('/proc/1/mem', 'rb').read(1)\n"
            "    raise SystemExit('read runner memory')\n"
            "except PermissionError:\n    pass\n"
            "try:\n    os.kill(-1, signal.SIGKILL)  # reaches only our own processes\n"
            "except ProcessLookupError:\n    pass\n")
    r = attack(adv_pool, code)
    assert r.status == "pass", r


def test_write_outside_workdir(adv_pool: ProcessPool) -> None:
    code = ("import os\nfor path in ('/etc/passwd', '/opt/selfalign/job_runner.py', '/usr/bin/x',\n"
            "             '/x', '/usr/lib/python3.11/os.py', '/proc/sys/kernel/hostname'):\n"
            "    try:\n        open(path, 'a').write('pwned')\n"
            "    except OSError:\n        continue\n    raise AssertionError(path)\n"
            "open('/tmp/t', 'w').write('x')\nopen('/dev/shm/s', 'w').write('x')\n"
            "open('/work/w', 'w').write('x')\nos.makedirs('d/e')\nopen('d/e/f', 'w').write('x')\n"
            "os.chmod('d/e', 0)\nos.chmod('d', 0)\n")
    r = attack(adv_pool, code)
    assert r.status == "pass", r


def test_shared_memory_left_behind(adv_pool: ProcessPool) -> None:
    code = ("from multiprocessing import shared_memory\n"
            "m = shared_memory.SharedMemory(create=True, size=1 << 20)\n"
            "m.buf[0] = 1\nimport os\nos._exit(0)\n")
    r = attack(adv_pool, code)
    assert r.status == "fail" and r.exception == "EarlyExit", r


def test_fill_tmpfs(adv_pool: ProcessPool) -> None:
    code = ("i = 0\nwhile True:\n    with open(f'f{i}', 'wb') as f:\n"
            "        for _ in range(15):\n            f.write(b'x' * (1 << 20))\n    i += 1\n")
    r = attack(adv_pool, code)
    assert r.status == "fail" and r.exception == "OSError", r
    assert "No space left" in r.stderr_tail
    big = "open('big', 'wb').write(b'x' * (10 << 20))\n"
    assert list(adv_pool.run([Program("write-again", big)]))[0].status == "pass"


def test_file_size_limit(adv_pool: ProcessPool) -> None:
    r = attack(adv_pool, "open('big', 'wb').write(b'x' * (20 << 20))\n")
    assert r.status == "fail" and r.exception == "OSError", r


def test_network_is_unreachable(adv_pool: ProcessPool) -> None:
    code = ("import socket\n"
            "for target in (('1.1.1.1', 53), ('8.8.8.8', 80), ('172.17.0.1', 2375)):\n"
            "    s = socket.socket()\n    s.settimeout(1)\n"
            "    try:\n        s.connect(target)\n    except OSError:\n        continue\n"
            "    raise AssertionError(target)\n"
            "try:\n    socket.getaddrinfo('deb.debian.org', 80)\n    raise AssertionError('dns')\n"
            "except socket.gaierror:\n    pass\n"
            "import os\nassert sorted(os.listdir('/sys/class/net')) == ['lo'], "
            "os.listdir('/sys/class/net')\n")
    r = attack(adv_pool, code)
    assert r.status == "pass", r


def test_huge_stdout(adv_pool: ProcessPool) -> None:
    r = attack(adv_pool, "while True:\n    print('x' * 10000)\n")
    assert r.status == "output_limit", r
    assert 0 < len(r.stdout_tail) <= 4096


def test_huge_stderr_in_a_child(adv_pool: ProcessPool) -> None:
    code = "import os, sys\nos.fork()\nwhile True:\n    sys.stderr.write('y' * 10000)\n"
    r = attack(adv_pool, code)
    assert r.status == "output_limit", r


def test_reading_host_paths(adv_pool: ProcessPool) -> None:
    code = ("import os\nfor p in ('/var/run/docker.sock', '/run/docker.sock', '/work/main',\n"
            "          '/root/.cache', '/home', '/etc/docker'):\n"
            "    assert not os.path.exists(p) or os.listdir(p) == [], p\n"
            "for p in ('/proc/1/environ', '/proc/1/cwd/x'):\n"
            "    try:\n        open(p, 'rb').read()\n    except OSError:\n        continue\n"
            "    raise AssertionError(p)\n")
    r = attack(adv_pool, code)
    assert r.status == "pass", r


def test_closing_stdout(adv_pool: ProcessPool) -> None:
    r = attack(adv_pool, "import os\nos.close(0)\nos.close(1)\nos.close(2)\nassert 1 + 1 == 2\n")
    assert r.status == "pass", r


def test_os_exit_zero_before_the_end_fails(adv_pool: ProcessPool) -> None:
    r = attack(adv_pool, "import os\nos._exit(0)\nassert False\n")
    assert r.status == "fail" and r.exit_code == 0 and r.exception == "EarlyExit", r


def test_sys_exit_zero_before_the_asserts_fails(adv_pool: ProcessPool) -> None:
    # Decision (docs/sandbox.md): a program passes only when it runs to its end.
    r = attack(adv_pool, "import sys\nsys.exit(0)\nassert False\n")
    assert r.status == "fail" and r.exit_code == 0 and r.exception == "SystemExit", r
    r = attack(adv_pool, "raise SystemExit(3)\n")
    assert r.status == "fail" and r.exit_code == 3, r


def test_segfault(adv_pool: ProcessPool) -> None:
    r = attack(adv_pool, "import ctypes\nctypes.string_at(0)\n")
    assert r.status == "fail" and r.exit_code == -11 and "SIGSEGV" in (r.exception or ""), r


def test_runner_replaced_when_it_dies_job_retried(adv_pool: ProcessPool) -> None:
    """Kill the container from outside mid-job: the job is retried on a fresh one."""
    import threading

    name = adv_pool._workers[0].name  # noqa: SLF001 - the test needs the container
    threading.Timer(0.7, lambda: subprocess.run(["docker", "rm", "-f", name],
                                                capture_output=True)).start()
    replaced = adv_pool.stats["replaced"]
    r = list(adv_pool.run([Program("slow", "import time\ntime.sleep(1.5)\n")]))[0]
    assert r.status == "pass" and r.attempts == 2, r
    assert adv_pool.stats["replaced"] == replaced + 1
    assert attack(adv_pool, "pass\n").status == "pass"


def test_runner_replaced_when_it_hangs_job_retried(adv_pool: ProcessPool) -> None:
    """Freeze the container mid-job: after timeout + WATCHDOG_GRACE_S without an
    answer the host replaces it, and the job is retried once on a fresh one."""
    import threading

    name = adv_pool._workers[0].name  # noqa: SLF001 - the test needs the container
    threading.Timer(0.7, lambda: subprocess.run(["docker", "pause", name],
                                                capture_output=True)).start()
    replaced = adv_pool.stats["replaced"]
    t0 = time.monotonic()
    r = list(adv_pool.run([Program("frozen", "import time\ntime.sleep(1.5)\n")]))[0]
    assert r.status == "pass" and r.attempts == 2, r
    assert adv_pool.stats["replaced"] == replaced + 1
    assert time.monotonic() - t0 >= adv_pool.config.timeout_s + WATCHDOG_GRACE_S
    assert attack(adv_pool, "pass\n").status == "pass"
