"""Vacuous tests: tests that pass whatever the solution does.

A passing program proves something only when its tests could have failed. The
analysis is static (``ast``) and conservative: it calls tests vacuous only when
it can see that they cannot fail, never on a guess. Tests are vacuous when:

* there is no test code;
* no check runs: no ``assert``, no ``self.assert*`` / ``pytest.raises`` style call,
  no ``raise`` under an ``if`` — or such checks sit only in functions that never
  run (the reachability follows the assembly rule of :mod:`selfalign.curate.program`:
  referenced functions, uncalled zero-argument ``test_*`` functions and
  ``TestCase`` test methods run);
* every check that runs cannot fail: a literal-only condition (``assert True``,
  ``assert 1 == 1``, ``self.assertTrue(True)``), a non-empty tuple
  (``assert (x, "message")``), or the same expression on both sides of ``==``,
  ``is``, ``<=`` or ``>=``;
* the tests never use a name the solution defines (they test something else).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from selfalign.curate.program import is_main_guard, loaded_names, uncalled_test_functions

_NOT_LITERAL = (
    ast.Name,
    ast.Call,
    ast.Attribute,
    ast.Subscript,
    ast.Starred,
    ast.NamedExpr,
    ast.Await,
    ast.Yield,
    ast.YieldFrom,
    ast.Lambda,
)
_REFLEXIVE = (ast.Eq, ast.Is, ast.LtE, ast.GtE)
_SETUP_METHODS = ("setUp", "setUpClass", "asyncSetUp", "tearDown", "tearDownClass")


@dataclass
class TestAnalysis:
    """What the static analysis found in one answer's tests."""

    checks: int = 0
    """Checks that run and could fail: the count the 'most_asserts' pick rule uses."""
    trivial: list[int] = field(default_factory=list)
    """Lines of checks that run but cannot fail."""
    unreachable: int = 0
    """Checks inside functions that never run."""
    vacuous_reason: str | None = None
    """Why the tests are vacuous; ``None`` when they can fail."""

    @property
    def vacuous(self) -> bool:
        return self.vacuous_reason is not None


def is_literal(node: ast.expr) -> bool:
    """True when the expression involves no name, call, attribute or subscript: a constant."""
    return not any(isinstance(n, _NOT_LITERAL) for n in ast.walk(node))


def cannot_fail(test: ast.expr) -> bool:
    """True when an ``assert`` condition is true whatever the program does."""
    if is_literal(test):
        return True
    if isinstance(test, ast.Tuple) and test.elts:
        return True
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], _REFLEXIVE)
        and ast.dump(test.left) == ast.dump(test.comparators[0])
    ):
        return True
    if isinstance(test, ast.BoolOp):
        if isinstance(test.op, ast.Or):
            return any(cannot_fail(v) for v in test.values)
        return all(cannot_fail(v) for v in test.values)
    return False


def _check_call(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name.startswith("assert") or name in ("fail", "raises", "approx")


class _Walker:
    def __init__(self, tree: ast.Module) -> None:
        self.used = loaded_names(tree)
        self.attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        self.auto_called = set(uncalled_test_functions(tree))
        self.result = TestAnalysis()

    def statements(self, body: list[ast.stmt], reachable: bool, testcase: bool = False) -> None:
        for stmt in body:
            self.statement(stmt, reachable, testcase)

    def statement(self, stmt: ast.stmt, reachable: bool, testcase: bool) -> None:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            if testcase:
                runs = stmt.name.startswith("test") or stmt.name in _SETUP_METHODS
            else:
                runs = stmt.name in self.used or stmt.name in self.attrs
                runs = runs or stmt.name in self.auto_called
            self.statements(stmt.body, reachable and runs)
            return
        if isinstance(stmt, ast.ClassDef):
            is_case = any(
                (b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", ""))
                in ("TestCase", "IsolatedAsyncioTestCase")
                for b in stmt.bases
            )
            self.statements(stmt.body, reachable, testcase=is_case)
            return
        if isinstance(stmt, ast.Assert):
            self._count(stmt.lineno, reachable, cannot_fail(stmt.test))
        elif isinstance(stmt, ast.If) and not is_main_guard(stmt):
            # ``if bad: raise ...`` is a hand-written assert.
            for inner in stmt.body + stmt.orelse:
                if isinstance(inner, ast.Raise):
                    self._count(inner.lineno, reachable, is_literal(stmt.test))
        # Calls in this statement's own expressions (not in nested statements).
        for node in _own_expressions(stmt):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and _check_call(sub):
                    args = [*sub.args, *(k.value for k in sub.keywords)]
                    trivial = bool(args) and all(is_literal(a) for a in args)
                    self._count(sub.lineno, reachable, trivial)
        for child in _child_bodies(stmt):
            self.statements(child, reachable, testcase)

    def _count(self, line: int, reachable: bool, trivial: bool) -> None:
        if not reachable:
            self.result.unreachable += 1
        elif trivial:
            self.result.trivial.append(line)
        else:
            self.result.checks += 1


def _child_bodies(stmt: ast.stmt) -> list[list[ast.stmt]]:
    bodies: list[list[ast.stmt]] = []
    for name in ("body", "orelse", "finalbody"):
        value = getattr(stmt, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            bodies.append(value)
    for handler in getattr(stmt, "handlers", []) or []:
        bodies.append(handler.body)
    for case in getattr(stmt, "cases", []) or []:
        bodies.append(case.body)
    return bodies


def _own_expressions(stmt: ast.stmt) -> list[ast.AST]:
    """The expressions of a statement, without the statements nested in it."""
    out: list[ast.AST] = []
    for name, value in ast.iter_fields(stmt):
        if name in ("body", "orelse", "finalbody", "handlers", "cases"):
            continue
        if isinstance(value, ast.AST):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, ast.AST))
    return out


def solution_names(solution: str) -> set[str]:
    """Names the solution defines at top level (functions, classes, assigned variables)."""
    try:
        tree = ast.parse(solution)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def analyse_tests(tests: str, solution: str = "") -> TestAnalysis:
    """Count the checks of ``tests`` that run and could fail, and say why they are vacuous if so."""
    if not tests.strip():
        return TestAnalysis(vacuous_reason="no test code")
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError) as exc:
        return TestAnalysis(vacuous_reason=f"tests do not parse: {exc.__class__.__name__}")
    walker = _Walker(tree)
    walker.statements(tree.body, reachable=True)
    result = walker.result
    if result.checks == 0:
        if result.trivial:
            lines = ", ".join(str(n) for n in result.trivial[:5])
            result.vacuous_reason = f"every check cannot fail (line {lines})"
        elif result.unreachable:
            result.vacuous_reason = "asserts only in functions that never run"
        else:
            result.vacuous_reason = "no assert"
        return result
    defined = solution_names(solution)
    if defined and not (defined & (walker.used | walker.attrs)):
        result.vacuous_reason = "the tests never use anything the solution defines"
    return result
