"""Changed expectations: the tests with one expected value changed must fail.

An equality check ``assert f(2) == 4`` (or ``self.assertEqual(f(2), 4)``) that passes
cannot also pass as ``assert f(2) == 5`` for an honest solution: the same value is
not equal to two different constants. If the program still passes with the changed
expectation, the check did not test the value: the solution reads its tests (its
own file, the caller's frame), returns an object that equals anything, or the
check's failure never reaches the exit code.

A *site* is a literal on one side of a check's ``==`` whose other side is not a
literal: the test of an ``assert`` (or one operand of its ``and``), the argument of
``assertTrue``, or an argument of ``assertEqual`` and its relatives. The literal is
replaced by a different value of the same type: a number ``n`` by ``n + 1 + |n|``,
``True`` by ``False``, a string by itself plus ``"\\x00"``, a list/tuple by itself plus
one more element, a set or dict by one more member, ``None`` by ``0``.
"""

from __future__ import annotations

import ast
import hashlib
import random
from dataclasses import dataclass
from typing import Any

from selfalign.verify.parsing import Source, index
from selfalign.verify.static_tests import is_literal

_EQUAL_CALLS = {
    "assertEqual",
    "assertEquals",
    "assertListEqual",
    "assertTupleEqual",
    "assertDictEqual",
    "assertSetEqual",
    "assertSequenceEqual",
    "assertMultiLineEqual",
    "assertAlmostEqual",
    "assertAlmostEquals",
    "assertCountEqual",
    "isclose",
}
_SENTINEL = "\x00"


@dataclass(frozen=True)
class Perturbation:
    """The tests with one expected value changed."""

    tests: str
    line: int
    description: str
    sure: bool = False
    """The changed check is a module-level ``assert``: it runs in every run that reaches
    the end, so an honest program cannot pass it with both values."""


def _changed(value: Any) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return True, not value
    if isinstance(value, int | float):
        return True, value + 1 + abs(value)
    if isinstance(value, complex):
        return True, value + 1
    if isinstance(value, str):
        return True, value + _SENTINEL
    if isinstance(value, bytes):
        return True, value + b"\x00"
    if value is None:
        return True, 0
    if isinstance(value, list):
        return True, [*value, value[-1] if value else 0]
    if isinstance(value, tuple):
        return True, (*value, value[-1] if value else 0)
    if isinstance(value, frozenset | set):
        return True, type(value)([*value, _SENTINEL])
    if isinstance(value, dict):
        return True, {**value, _SENTINEL: 0}
    return False, None


def _literal(node: ast.expr) -> tuple[bool, Any]:
    if not is_literal(node):
        return False, None
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _sides(pair: list[ast.expr]) -> ast.expr | None:
    """The literal of a (left, right) pair when exactly one side is a literal."""
    literal = [n for n in pair if _literal(n)[0]]
    if len(literal) != 1:
        return None
    return literal[0]


def _compare_site(node: ast.expr) -> ast.expr | None:
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
        return _sides([node.left, node.comparators[0]])
    return None


def _sites(nodes: list[ast.AST]) -> list[ast.expr]:
    out: list[ast.expr] = []
    for node in nodes:
        if isinstance(node, ast.Assert):
            tests = (
                node.test.values
                if isinstance(node.test, ast.BoolOp) and isinstance(node.test.op, ast.And)
                else [node.test]
            )
            for t in tests:
                site = _compare_site(t)
                if site is not None:
                    out.append(site)
                elif isinstance(t, ast.Call) and _call_name(t) in _EQUAL_CALLS:
                    site = _sides(list(t.args[:2])) if len(t.args) >= 2 else None
                    if site is not None:
                        out.append(site)
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if name in ("assertTrue", "assert_") and node.args:
                site = _compare_site(node.args[0])
                if site is not None:
                    out.append(site)
            elif name in _EQUAL_CALLS and name != "isclose" and len(node.args) >= 2:
                site = _sides(list(node.args[:2]))
                if site is not None:
                    out.append(site)
    return out


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def count_sites(tests: str) -> int:
    """How many expected values of ``tests`` can be changed."""
    idx = index(tests)
    return 0 if idx is None else len(_sites(idx.nodes))


def perturb_expectations(tests: str, n: int, seed: int = 0) -> list[Perturbation]:
    """Up to ``n`` copies of ``tests``, each with one expected value changed (seeded choice)."""
    if n <= 0:
        return []
    idx = index(tests)
    if idx is None:
        return []
    sites = _sites(idx.nodes)
    digest = hashlib.sha256(tests.encode("utf-8")).hexdigest()
    random.Random(f"{seed}:{digest}").shuffle(sites)
    top = {id(stmt) for stmt in idx.tree.body if isinstance(stmt, ast.Assert)}

    def sure(node: ast.AST) -> bool:
        parent = idx.parents.get(node)
        while parent is not None and not isinstance(parent, ast.Assert):
            parent = idx.parents.get(parent)
        return parent is not None and id(parent) in top

    # Sure sites first (stable: the seeded order otherwise).
    sites.sort(key=lambda node: not sure(node))
    out: list[Perturbation] = []
    seen: set[str] = {tests}
    src = Source(tests)
    for node in sites:
        ok, value = _literal(node)
        changed, new = _changed(value) if ok else (False, None)
        if not changed:
            continue
        # A bare repr: it is an atom (or a negative number, fine beside ``==`` and as an
        # argument), and the changed test reads like one a person would write.
        text = repr(new)
        # A literal replaced by the repr of another literal: the result parses.
        span = src.span(node)
        if span is None:
            continue
        new_tests = src.replace(span[0], span[1], text)
        if new_tests in seen:
            continue
        seen.add(new_tests)
        before = src.segment(node) or repr(value)
        out.append(
            Perturbation(
                new_tests,
                node.lineno,
                f"line {node.lineno}: expected {before[:40]} -> {repr(new)[:40]}",
                sure=sure(node),
            )
        )
        if len(out) == n:
            break
    return out
