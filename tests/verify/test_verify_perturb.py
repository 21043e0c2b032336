"""Changed expectations: one expected literal of a check changed."""

from __future__ import annotations

import ast

from selfalign.verify.perturb import count_sites, perturb_expectations

TESTS = """
import math
import unittest

assert add(1, 2) == 3
assert -1 == add(-2, 1)
assert words("a b") == ["a", "b"] and True
assert math.isclose(mean([1, 2]), 1.5)
assert add(1, 1) != 3
assert 1 == 1
if add(0, 0) == 0:
    print("not a check")


class T(unittest.TestCase):
    def test_x(self):
        self.assertEqual(pair(), (1, "x"))
        self.assertTrue(add(2, 2) == 4)
        self.assertAlmostEqual(mean([1]), 1.0)
        self.assertEqual(lookup(), {"k": None})
"""


def test_sites_are_expected_values_of_checks_only() -> None:
    # ==-comparisons in asserts (not `!=`, not literal-only, not `if`), isclose, assertEqual
    # family and assertTrue(x == literal).
    assert count_sites(TESTS) == 8


def test_each_copy_changes_one_literal_to_a_different_value() -> None:
    copies = perturb_expectations(TESTS, 20, seed=1)
    assert len(copies) == 8
    for p in copies:
        assert p.tests != TESTS
        ast.parse(p.tests)
        changed = [
            (a, b) for a, b in zip(TESTS.splitlines(), p.tests.splitlines(), strict=True) if a != b
        ]
        assert len(changed) == 1 and changed[0][0].strip().split(" ")[0] in (
            "assert",
            "self.assertEqual(pair(),",
            "self.assertTrue(add(2,",
            "self.assertAlmostEqual(mean([1]),",
            "self.assertEqual(lookup(),",
        )
        assert p.description.startswith(f"line {p.line}: expected ")
    # seeded choice
    assert [p.tests for p in perturb_expectations(TESTS, 3, seed=1)] == [
        p.tests for p in perturb_expectations(TESTS, 3, seed=1)
    ]
    assert perturb_expectations(TESTS, 0) == [] and perturb_expectations("x(:", 3) == []


def test_the_changed_value_keeps_its_type() -> None:
    copies = {p.line: p.tests.splitlines()[p.line - 1] for p in perturb_expectations(TESTS, 20)}
    assert copies[5].strip() == "assert add(1, 2) == 7"
    assert copies[6].strip() == "assert 1 == add(-2, 1)"
    assert copies[7].strip() == "assert words(\"a b\") == ['a', 'b', 'b'] and True"
    assert copies[8].strip() == "assert math.isclose(mean([1, 2]), 4.0)"
    assert "(1, 'x', 'x')" in copies[17] and "== 9" in copies[18] and "3.0" in copies[19]
    assert "{'k': None, '\\x00': 0}" in copies[20]


def test_module_level_asserts_are_sure_and_come_first() -> None:
    tests = (
        "def test_a():\n    assert f(1) == 2\n\n\n"
        "assert f(2) == 3\n"
        "if True:\n    assert f(3) == 4\n"
    )
    out = perturb_expectations(tests, 3)
    assert [p.sure for p in out] == [True, False, False]
    assert out[0].line == 5
