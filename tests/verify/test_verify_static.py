"""Static analysis of tests: what runs, what can fail, and why not."""

from __future__ import annotations

import pytest

from selfalign.verify.static_tests import analyse_tests

SOL = "def add(a, b):\n    return a + b\n"

VACUOUS = {
    "constant_guard": [
        "if False:\n    assert add(1, 2) == 3\n",
        "if 0:\n    assert add(1, 2) == 3\n",
        "while False:\n    assert add(1, 2) == 3\n",
        "if not __debug__:\n    assert add(1, 2) == 3\n",
        "for x in []:\n    assert add(x, 1) == 2\n",
        "for x in range(0):\n    assert add(x, 1) == 2\n",
        "if True:\n    pass\nelse:\n    assert add(1, 2) == 3\n",
    ],
    "never_called": [
        "def test_add():\n    assert add(1, 2) == 3\n\n\ntest_add\n",
        "def test_add():\n    assert add(1, 2) == 3\n\n\nprint(test_add)\n",
        "def test_add():\n    assert add(1, 2) == 3\n\n\nassert test_add\n",
        "def check():\n    assert add(1, 2) == 3\n",
        "import pytest\n\n\n@pytest.mark.parametrize('a', [1])\ndef test_add(a):\n"
        "    assert add(a, 1) == 2\n",
        "class Checks:\n    def run(self):\n        assert add(1, 2) == 3\n",
    ],
    "swallowed": [
        "try:\n    assert add(1, 2) == 3\nexcept AssertionError:\n    pass\n",
        "try:\n    assert add(1, 2) == 3\nexcept Exception as e:\n    print(e)\n",
        "try:\n    assert add(1, 2) == 3\nexcept:\n    pass\n",
        "try:\n    assert add(1, 2) == 3\nexcept (KeyError, BaseException):\n    pass\n",
        "import contextlib\nwith contextlib.suppress(AssertionError):\n    assert add(1, 2) == 3\n",
        "def t():\n    try:\n        assert add(1, 2) == 3\n    finally:\n        return\n\n\n"
        "t()\n",
        "def t():\n    assert add(1, 2) == 3\n\n\ntry:\n    t()\nexcept Exception:\n    pass\n",
        "class Quiet:\n    def __enter__(self):\n        return self\n\n"
        "    def __exit__(self, *a):\n        return True\n\n\n"
        "with Quiet():\n    assert add(1, 2) == 3\n",
    ],
    "thread": [
        "import threading\n\n\ndef c():\n    assert add(1, 2) == 3\n\n\n"
        "threading.Thread(target=c).start()\n",
        "from threading import Timer\n\n\ndef c():\n    assert add(1, 2) == 3\n\n\n"
        "Timer(0.1, c).start()\n",
    ],
    "process": [
        "import multiprocessing as mp\n\n\ndef c():\n    assert add(1, 2) == 3\n\n\n"
        "p = mp.Process(target=c)\np.start()\np.join()\n",
    ],
    "signal": [
        "import signal\n\n\ndef h(s, f):\n    assert add(1, 2) == 3\n\n\n"
        "signal.signal(signal.SIGUSR1, h)\n",
    ],
    "atexit": [
        "import atexit\n\n\ndef c():\n    assert add(1, 2) == 3\n\n\natexit.register(c)\n",
        "import atexit\n\n\n@atexit.register\ndef c():\n    assert add(1, 2) == 3\n",
    ],
    "skipped": [
        "import unittest\n\n\nclass T(unittest.TestCase):\n    @unittest.skip('x')\n"
        "    def test_a(self):\n        self.assertEqual(add(1, 2), 3)\n",
        "import unittest\n\n\n@unittest.skipIf(True, 'x')\nclass T(unittest.TestCase):\n"
        "    def test_a(self):\n        self.assertEqual(add(1, 2), 3)\n",
        "import unittest\n\n\nclass T(unittest.TestCase):\n    def setUp(self):\n"
        "        self.skipTest('no')\n\n    def test_a(self):\n"
        "        self.assertEqual(add(1, 2), 3)\n",
        "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_a(self):\n"
        "        raise unittest.SkipTest('no')\n        self.assertEqual(add(1, 2), 3)\n",
        "import unittest\n\n\nclass T(unittest.TestCase):\n    __unittest_skip__ = True\n\n"
        "    def test_a(self):\n        self.assertEqual(add(1, 2), 3)\n",
    ],
    "expected_failure": [
        "import unittest\n\n\nclass T(unittest.TestCase):\n    @unittest.expectedFailure\n"
        "    def test_a(self):\n        self.assertEqual(add(1, 2), 4)\n",
    ],
    "dead_code": [
        "import sys\nsys.exit(0)\nassert add(1, 2) == 3\n",
        "import os\nos._exit(0)\nassert add(1, 2) == 3\n",
        "def t():\n    return\n    assert add(1, 2) == 3\n\n\nt()\n",
        "if __debug__:\n    raise SystemExit(0)\nassert add(1, 2) == 3\n",
    ],
    "rerun_optimized": [
        "import subprocess, sys\nsubprocess.run([sys.executable, '-O', __file__])\n"
        "assert add(1, 2) == 3\n",
        "import os, subprocess, sys\nos.environ['PYTHONOPTIMIZE'] = '1'\n"
        "subprocess.run([sys.executable, __file__])\nassert add(1, 2) == 3\n",
        "exec(compile('assert add(1, 2) == 3', 't', 'exec', optimize=2))\n",
    ],
    "patches_framework": [
        "import unittest\nunittest.TestCase.assertEqual = lambda *a: None\nassert add(1, 2) == 3\n",
        "import builtins\nbuiltins.AssertionError = KeyError\nassert add(1, 2) == 3\n",
    ],
    "rebinds_solution": [
        "def add(a, b):\n    return a + b\n\n\nassert add(1, 2) == 3\n",
        "add = lambda a, b: a + b\nassert add(1, 2) == 3\n",
        "from operator import add\nassert add(1, 2) == 3\n",
        "globals()['add'] = lambda a, b: 3\nassert add(1, 2) == 3\n",
    ],
    "mocks_solution": [
        "from unittest import mock\nwith mock.patch('__main__.add', return_value=3):\n"
        "    assert add(1, 2) == 3\n",
    ],
    "no_check": [
        "", "print(add(1, 2))\n", "assert True\n", "assert add(1, 2) == add(1, 2)\n",
        "assert (add(1, 2) == 3, 'msg')\n", "assert add(1, 2) == 4 or True\n",
        "assert isinstance(add(1, 2), object)\n", "x = add(1, 2)\nassert 1 == 1\n",
    ],
}

HONEST = [
    "assert add(1, 2) == 3\n",
    "def test_add():\n    assert add(1, 2) == 3\n",  # the assembly rule calls it
    "def test_add():\n    assert add(1, 2) == 3\n\n\ntest_add()\n",
    "def check(a, b, want):\n    if add(a, b) != want:\n        raise AssertionError(a)\n\n\n"
    "for a, b, w in [(1, 2, 3), (0, 0, 0)]:\n    check(a, b, w)\n",
    "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_a(self):\n"
    "        self.assertEqual(add(1, 2), 3)\n\n\nif __name__ == '__main__':\n    unittest.main()\n",
    "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_raises(self):\n"
    "        with self.assertRaises(TypeError):\n            add(1, None)\n",
    "try:\n    add(1, None)\nexcept TypeError:\n    pass\nelse:\n"
    "    raise AssertionError('no error')\n",
    "try:\n    add(1, None)\n    assert False, 'no error'\nexcept TypeError:\n    pass\n",
    "TESTS = []\n\n\ndef case(f):\n    TESTS.append(f)\n    return f\n\n\n@case\ndef t1():\n"
    "    assert add(1, 1) == 2\n\n\nfor t in TESTS:\n    t()\n",
    "import math\nassert math.isclose(add(0.1, 0.2), 0.3)\n",
    "from unittest import mock\nwith mock.patch('time.time', return_value=0):\n"
    "    assert add(1, 2) == 3\n",  # mocking a dependency is fine
    "import threading\nresults = []\n"
    "t = threading.Thread(target=lambda: results.append(add(1, 2)))\n"
    "t.start()\nt.join()\nassert results == [3]\n",
    "failures = 0\nfor a, b, w in [(1, 2, 3)]:\n    try:\n        assert add(a, b) == w\n"
    "    except AssertionError:\n        failures += 1\nassert failures == 0\n",
    "class Checks:\n    def run(self):\n        assert add(1, 2) == 3\n\n\nChecks().run()\n",
    "import sys\nassert add(1, 2) == 3\nsys.exit(0)\n",  # exits after its checks
]


@pytest.mark.parametrize(
    ("family", "tests"), [(f, t) for f, cases in VACUOUS.items() for t in cases]
)
def test_vacuous_tests_are_seen(family: str, tests: str) -> None:
    result = analyse_tests(tests, SOL)
    assert result.vacuous, (tests, result)
    if family != "no_check":
        assert family in {f.family for f in result.findings}, result.findings


@pytest.mark.parametrize("tests", HONEST)
def test_honest_tests_can_fail(tests: str) -> None:
    result = analyse_tests(tests, SOL)
    assert not result.vacuous, (tests, result.vacuous_reason, result.findings)
    assert result.checks >= 1


def test_counts_lines_and_reasons() -> None:
    tests = (
        "assert add(1, 2) == 3\n"
        "assert True\n"
        "if False:\n    assert add(2, 2) == 4\n"
        "try:\n    assert add(0, 0) == 0\nexcept AssertionError:\n    pass\n"
    )
    result = analyse_tests(tests, SOL)
    assert result.checks == 1 and result.trivial == [2] and result.unreachable == 2
    assert {(f.family, f.line) for f in result.findings} >= {("constant_guard", 4),
                                                            ("swallowed", 6)}
    assert analyse_tests("def broken(:\n", SOL).vacuous_reason == "tests do not parse: SyntaxError"
    assert "never use" in str(analyse_tests("assert len('ab') == 2\n", SOL).vacuous_reason)


def test_auto_called_follows_the_assembly_rule() -> None:
    import ast

    from selfalign.curate.program import uncalled_test_functions
    from selfalign.verify.parsing import index
    from selfalign.verify.static_tests import auto_called

    for tests in [*HONEST, *(t for cases in VACUOUS.values() for t in cases),
                  "def test_a(x=1, *, y=2):\n    pass\n\n\ndef test_b(x):\n    pass\n"
                  "async def test_c():\n    pass\n\n\ndef test_d():\n    pass\n\n\nd = [test_d]\n"]:
        idx = index(tests)
        assert idx is not None
        assert auto_called(idx.tree, idx.nodes) == uncalled_test_functions(ast.parse(tests))
