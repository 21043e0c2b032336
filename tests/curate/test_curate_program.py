"""The assembly rule and the vacuous-test analysis (pure Python: no sandbox needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from selfalign.curate.program import UNITTEST_HELPER, assemble, program_hash
from selfalign.verify.static_tests import analyse_tests


def _run(code: str, tmp_path) -> int:
    """Run a program with the host interpreter, stdin closed, as the sandbox would (exit code)."""
    path = tmp_path / "prog.py"
    path.write_text(code)
    return subprocess.run(
        [sys.executable, str(path)], stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    ).returncode


def test_solution_main_block_is_removed_and_tests_main_block_kept() -> None:
    solution = "def f(x):\n    return x\n\nif __name__ == '__main__':\n    print(f(input()))\n"
    tests = "if __name__ == '__main__':\n    assert f(2) == 2\n"
    program = assemble(solution, tests)
    assert "input()" not in program.code
    assert "assert f(2) == 2" in program.code
    assert program.notes == ["removed the solution's __main__ block (lines 4-5)"]
    assert program.program_hash == program_hash(program.code)


def test_code_that_does_not_parse_is_left_alone() -> None:
    program = assemble("def f(:\n  pass\n", "assert f()\n")
    assert program.code.startswith("def f(:\n") and program.notes == []


@pytest.mark.parametrize(("body", "expected"), [("'b a'", 0), ("'a b'", 1)])
def test_unittest_main_passes_and_fails_honestly(body: str, expected: int, tmp_path) -> None:
    tests = (
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_x(self):\n"
        f"        self.assertEqual(f('a b'), {body})\n\n"
        "if __name__ == '__main__':\n    unittest.main(verbosity=0)\n"
    )
    program = assemble("def f(s):\n    return ' '.join(reversed(s.split()))\n", tests)
    assert f"{UNITTEST_HELPER}(verbosity=0)" in program.code
    assert (_run(program.code, tmp_path) != 0) == bool(expected)


def test_uncalled_test_functions_and_test_cases_are_started(tmp_path) -> None:
    tests = (
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_x(self):\n"
        "        self.assertEqual(1, 2)\n\n"
        "def test_a():\n    assert True\n\ndef test_b(x):\n    assert x\n"
    )
    program = assemble("", tests)
    assert program.code.rstrip().endswith(f"{UNITTEST_HELPER}()\ntest_a()")
    assert "test_b()" not in program.code
    assert _run(program.code, tmp_path) != 0  # the TestCase that fails now runs


@pytest.mark.parametrize(
    ("tests", "reason"),
    [
        ("", "no test code"),
        ("x = f(1)\nprint(x)\n", "no assert"),
        ("assert True\nassert 1 == 1\n", "every check cannot fail (line 1, 2)"),
        ("assert (f(1) == 2, 'message')\n", "every check cannot fail (line 1)"),
        ("assert f(1) == f(1)\n", "every check cannot fail (line 1)"),
        (
            "def helper():\n    assert f(1) == 2\n",
            "no check that runs can fail: 1 in functions that never run (line 2)",
        ),
        (
            "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n"
            "        self.assertTrue(True)\n",
            "every check cannot fail (line 4)",
        ),
        ("assert g(1) == 2\n", "the tests never use anything the solution defines"),
    ],
)
def test_vacuous_tests_are_found_with_a_reason(tests: str, reason: str) -> None:
    result = analyse_tests(tests, "def f(x):\n    return x\n")
    assert result.vacuous_reason == reason


@pytest.mark.parametrize(
    ("tests", "checks"),
    [
        ("assert f(1) == 1\nassert f(2) != 3\n", 2),
        ("def test_one():\n    assert f(1) == 1\n", 1),
        ("def check():\n    assert f(1) == 1\ncheck()\n", 1),
        (
            "import unittest\nclass T(unittest.TestCase):\n    def test_a(self):\n"
            "        self.assertEqual(f(1), 1)\n        with self.assertRaises(TypeError):\n"
            "            f()\n",
            2,
        ),
        ("if f(1) != 1:\n    raise ValueError('wrong')\n", 1),
    ],
)
def test_real_checks_are_counted(tests: str, checks: int) -> None:
    result = analyse_tests(tests, "def f(x):\n    return x\n")
    assert result.vacuous_reason is None
    assert result.checks == checks
