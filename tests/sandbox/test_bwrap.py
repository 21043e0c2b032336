"""The bubblewrap backend: same interface, same runner."""

from __future__ import annotations

import collections

import pytest

from selfalign.sandbox import Program, SandboxConfig, open_pool
from selfalign.sandbox.humaneval import broken_programs, canonical_programs


@pytest.fixture(scope="module")
def bwrap_pool(bwrap_ok: bool):  # noqa: ANN201
    with open_pool(SandboxConfig(backend="bwrap", workers=2, timeout_s=2)) as pool:
        yield pool


def test_bwrap_pass_fail_timeout(bwrap_pool) -> None:  # noqa: ANN001
    progs = [Program("p", "assert 1 + 1 == 2\n"), Program("f", "assert 1 + 1 == 3\n"),
             Program("t", "while True:\n    pass\n"), Program("m", "x = bytearray(8 << 30)\n"),
             Program("o", "while True:\n    print('x' * 10000)\n")]
    by_id = {r.id: r for r in bwrap_pool.run(progs)}
    assert by_id["p"].status == "pass"
    assert by_id["f"].status == "fail" and by_id["f"].exception == "AssertionError"
    assert by_id["t"].status == "timeout"
    assert by_id["m"].status == "memory"
    assert by_id["o"].status == "output_limit"


def test_bwrap_isolation(bwrap_pool) -> None:  # noqa: ANN001
    code = ("import os, socket\n"
            "s = socket.socket()\ns.settimeout(1)\n"
            "try:\n    s.connect(('1.1.1.1', 53))\n    raise AssertionError('network')\n"
            "except OSError:\n    pass\n"
            "try:\n    open('/usr/x', 'w')\n    raise AssertionError('wrote /usr')\n"
            "except OSError:\n    pass\n"
            "if os.fork() == 0:\n    os.setsid()\n    import time\n    time.sleep(30)\n")
    probe = ("import os\nme = os.getuid()\nfor p in os.listdir('/proc'):\n"
             "    if p.isdigit() and int(p) not in (1, os.getpid()):\n"
             "        st = open(f'/proc/{p}/status').read()\n"
             "        uid = int(st.split('Uid:')[1].split()[0])\n"
             "        assert '\\nState:\\tZ' in st or uid != me, p\n")
    results = list(bwrap_pool.run([Program("iso", code)]))
    assert results[0].status == "pass", results[0]
    results = list(bwrap_pool.run([Program("probe", probe)]))
    assert results[0].status == "pass", results[0]


def test_bwrap_humaneval(bwrap_pool) -> None:  # noqa: ANN001
    progs = canonical_programs() + broken_programs()
    counts = collections.Counter((r.id.endswith("/broken"), r.status)
                                 for r in bwrap_pool.run(progs))
    assert counts == {(False, "pass"): 164, (True, "fail"): 164}, counts
