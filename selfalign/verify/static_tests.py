"""Static analysis of an answer's tests: which checks run, and can any of them fail?

The static analysis of tests, with one conservative rule:
tests are *vacuous* only when the analysis can see that they cannot fail, never on
a guess. The dynamic checks (null implementation, mutants; :mod:`.verifier`) do
the measuring; this module explains what it can see, with lines.

A *check* is an ``assert``, a ``self.assert*``/``fail``/``pytest.raises`` style call,
or a ``raise`` (``if bad: raise ...``). A check counts when it runs and its failure
reaches the exit code. These are the ways a check does not count (``family``):

``constant_guard``
    under ``if False:``/``if 0:``/``if not __debug__:``, in ``while False:``, a loop
    over ``[]``/``range(0)``, or the ``else`` of ``if True:``.
``never_called``
    in a function nothing calls. A reference is not a call: ``test_add`` on its own,
    ``print(test_add)``, ``assert test_add`` or ``if test_add:`` do not run it (and
    stop the assembly rule from calling it). Calls are followed through functions,
    aliases, ``self.method()``, local classes, and the assembly rule
    (:mod:`selfalign.curate.program`): unreferenced zero-argument ``test_*``
    functions and the test methods of ``unittest.TestCase`` classes run. A function
    handed to an unknown call (``run(test_add)``) or stored in a container counts as
    run: the analysis cannot see that it is not.
``swallowed``
    inside ``try:`` with a handler for ``AssertionError``/``Exception``/
    ``BaseException``/bare ``except`` that does not raise again, inside
    ``with contextlib.suppress(...)`` of those, under a local context manager whose
    ``__exit__`` returns ``True``, or in a ``try`` whose ``finally`` returns, breaks or
    continues.
``thread`` / ``process`` / ``signal`` / ``atexit``
    in a function run by ``threading.Thread``/``Timer``, ``multiprocessing.Process``,
    a signal handler that nothing raises, or ``atexit.register`` (never run in the
    sandbox; a failure there does not change the exit code of plain ``python3``).
``skipped`` / ``expected_failure``
    in ``unittest`` tests skipped by ``@skip``/``skipIf``/``skipUnless`` (constant
    conditions), ``__unittest_skip__``, ``self.skipTest()``/``raise SkipTest`` before
    them (also in ``setUp``/``setUpClass``), or marked ``@expectedFailure``.
``dead_code``
    after an unconditional ``return``/``raise``/``break``/``continue``/``sys.exit()``/
    ``os._exit()``/``os.exec*()`` in the same block.
``result_ignored``
    in ``unittest`` tests run only by a runner whose result nobody checks
    (``ut.main(exit=False)`` under an alias, ``TextTestRunner().run(suite)``).

Conditions are decided with what the program fixes (``__name__ == "__main__"``,
``__debug__``, ``sys.version_info`` when every Python 3 agrees, and module constants:
top-level names assigned once to an immutable literal); names bound once at top level
are followed (an exception alias in ``except``, a ``suppress`` object in ``with``, a
skip decorator kept in a name). Code run through ``exec``/``eval`` of a constant
string is analysed as the tests' own.

Besides, some findings are about the tests as a whole: ``rebinds_solution`` and
``mocks_solution`` (the tests define, assign, import or ``mock.patch`` a name the
solution defines: checks of that name test the tests' own version),
``rerun_optimized`` (the tests run the program again with assertions stripped:
``python -O``, ``PYTHONOPTIMIZE``, ``compile(..., optimize=...)``),
``patches_framework`` (assignments to ``unittest``/``builtins``/``AssertionError``),
``tampers_reporting`` (``sys.excepthook``/``threading.excepthook``) and
``early_exit`` (``sys.exit``/``os._exit`` in the tests).

Tests are vacuous when: there is no test code or it does not parse; no check
counts (every check is trivial, neutralised as above, or there is none); the
tests re-run the program without assertions or patch the test machinery; or the
tests use nothing the solution defines, other than names they rebind themselves.
"""

from __future__ import annotations

import ast
import copy
import unittest
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from selfalign.curate.program import is_main_guard, is_unittest_main, testcase_classes
from selfalign.verify.findings import Finding
from selfalign.verify.names import Names, last_part
from selfalign.verify.parsing import Index, index, inline_exec, is_literal_data, parse, walk

# Why a check does not count; None (EFFECTIVE) means it does.
EFFECTIVE: str | None = None
CHECK_FAMILIES = (
    "constant_guard",
    "never_called",
    "swallowed",
    "thread",
    "process",
    "signal",
    "atexit",
    "skipped",
    "expected_failure",
    "dead_code",
    "result_ignored",
)
_PHRASES = {
    "constant_guard": "under a condition that is always false",
    "never_called": "in functions that never run",
    "swallowed": "whose failure is swallowed (try/except, suppress, finally: return)",
    "thread": "run in a thread, whose failure never reaches the exit code",
    "process": "run in a child process, whose failure never reaches the exit code",
    "signal": "in a signal handler that never runs",
    "atexit": "registered with atexit",
    "skipped": "in skipped unittest tests",
    "expected_failure": "in @expectedFailure tests, where a failure counts as success",
    "dead_code": "after an unconditional return, raise or exit",
    "result_ignored": "run by a test runner whose result nobody checks",
}
# Findings that make the tests vacuous on their own: honest tests never do this.
BLOCKING = {
    "rerun_optimized": "the tests re-run the program with assertions disabled",
    "patches_framework": "the tests patch the test machinery",
}

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
_SETUP = ("setUp", "tearDown", "asyncSetUp", "asyncTearDown", "setUpClass", "tearDownClass")
_SWALLOWING = {"AssertionError", "Exception", "BaseException"}
_EXITS = {"sys.exit", "os._exit", "exit", "quit", "os.abort", "pytest.exit", "builtins.exit"}
_SKIP_CALLS = {"skipTest", "pytest.skip"}
_SKIP_EXCEPTIONS = {"SkipTest", "unittest.SkipTest", "unittest.case.SkipTest"}
_THREADS = {
    "threading.Thread",
    "threading.Timer",
    "_thread.start_new_thread",
    "_thread.start_new",
    "Thread",
    "Timer",
}
_PROCESSES = {"multiprocessing.Process", "Process", "multiprocessing.context.Process"}
_SIGNAL_RAISERS = {
    "signal.raise_signal",
    "os.kill",
    "signal.pthread_kill",
    "os.killpg",
    "signal.setitimer",
    "signal.alarm",
}
_NON_CALLING = {
    "print",
    "str",
    "repr",
    "id",
    "type",
    "callable",
    "isinstance",
    "hasattr",
    "len",
    "bool",
    "hash",
    "format",
    "getattr",
    "vars",
    "dir",
    "issubclass",
}
_SAFE_DECORATORS = {
    "staticmethod",
    "classmethod",
    "property",
    "functools.wraps",
    "functools.lru_cache",
    "functools.cache",
    "functools.cached_property",
    "contextlib.contextmanager",
    "dataclasses.dataclass",
    "lru_cache",
    "cache",
    "wraps",
    "contextmanager",
    "dataclass",
}
_MOCKS = {
    "unittest.mock.patch",
    "mock.patch",
    "patch",
    "unittest.mock.patch.object",
    "mock.patch.object",
    "patch.object",
    "unittest.mock.patch.dict",
    "patch.dict",
    "unittest.mock.patch.multiple",
    "patch.multiple",
}


@dataclass
class TestAnalysis:
    """What the static analysis found in one answer's tests."""

    __test__ = False  # not a pytest test class

    checks: int = 0
    """Checks that run and could fail: the count the 'most_asserts' pick rule uses."""
    trivial: list[int] = field(default_factory=list)
    """Lines of checks that run but cannot fail."""
    unreachable: int = 0
    """Checks that do not count (any family of ``neutralised``)."""
    vacuous_reason: str | None = None
    """Why the tests are vacuous; ``None`` when they can fail."""
    findings: list[Finding] = field(default_factory=list)
    """Every check that does not count and every whole-test finding, with lines."""

    @property
    def vacuous(self) -> bool:
        return self.vacuous_reason is not None

    @property
    def families(self) -> Counter[str]:
        return Counter(f.family for f in self.findings)


def is_literal(node: ast.expr) -> bool:
    """True when the expression involves no name, call, attribute or subscript: a constant."""
    queue: list[ast.AST] = [node]
    for n in queue:  # breadth first: a call or name is most often near the top
        if isinstance(n, _NOT_LITERAL):
            return False
        if not is_literal_data(n):  # as walk(): the members of data are constants
            queue.extend(ast.iter_child_nodes(n))
    return True


def _literal_value(node: ast.expr) -> tuple[bool, object]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


# What the program's environment fixes: it runs as ``__main__``, with assertions on,
# on some Python 3 (``sys.version_info`` is tried at both ends of 3.x).
PROGRAM_NAMES: dict[str, object] = {"__name__": "__main__", "__debug__": True}
_VERSIONS = ((3, 0, 0, "final", 0), (3, 99, 99, "final", 0))


def _constant(value: object) -> ast.expr:
    """The expression of a literal value (tuples of literals too)."""
    if isinstance(value, tuple):
        return ast.Tuple(elts=[_constant(v) for v in value], ctx=ast.Load())
    return ast.Constant(value=value)  # pyright: ignore[reportArgumentType]


class _Substitute(ast.NodeTransformer):
    def __init__(self, env: Mapping[str, object], version: tuple[object, ...]) -> None:
        self.env = env
        self.version = version
        self.unknown = False

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.env:
            return ast.copy_location(_constant(self.env[node.id]), node)
        if node.id not in ("True", "False", "None"):
            self.unknown = True
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if (
            node.attr == "version_info"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            return ast.copy_location(
                ast.Tuple(elts=[_constant(v) for v in self.version], ctx=ast.Load()),
                node,
            )
        self.unknown = True
        return node


def _environment_truth(node: ast.expr, env: Mapping[str, object]) -> bool | None:
    """The truth of a condition over names whose value is known (``__name__``, module
    constants, ``sys.version_info``), when it is the same on every Python 3."""
    names = {n.id for n in walk(node) if isinstance(n, ast.Name)}
    uses_version = "version_info" in {n.attr for n in walk(node) if isinstance(n, ast.Attribute)}
    if not (names & set(env)) and not uses_version:
        return None
    truths = set()
    for version in _VERSIONS if uses_version else _VERSIONS[:1]:
        sub = _Substitute(env, version)
        new = sub.visit(copy.deepcopy(node))
        if (
            sub.unknown
            or not isinstance(new, ast.expr)
            or any(
                isinstance(n, _NOT_LITERAL) and not isinstance(n, ast.Subscript) for n in walk(new)
            )
        ):
            return None
        try:
            code = compile(ast.fix_missing_locations(ast.Expression(new)), "<test>", "eval")
            truths.add(bool(eval(code, {"__builtins__": {}}, {})))  # noqa: S307
        except Exception:  # noqa: BLE001 - a condition that raises is not a constant
            return None
    return truths.pop() if len(truths) == 1 else None


def constant_truth(node: ast.expr, env: Mapping[str, object] | None = None) -> bool | None:
    """The truth value of a condition known without running it, or None.

    ``env`` holds names whose value is known (see :data:`PROGRAM_NAMES`)."""
    if isinstance(node, ast.Name) and node.id == "__debug__":
        return True
    if isinstance(node, ast.Name) and node.id in ("True", "False", "None"):
        return node.id == "True"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = constant_truth(node.operand, env)
        return None if inner is None else not inner
    if isinstance(node, ast.BoolOp):
        values = [constant_truth(v, env) for v in node.values]
        if isinstance(node.op, ast.And):
            if any(v is False for v in values):
                return False
            return True if all(v is True for v in values) else None
        if any(v is True for v in values):
            return True
        return False if all(v is False for v in values) else None
    if is_literal(node):
        ok, value = _literal_value(node)
        if ok:
            return bool(value)
        if isinstance(node, ast.Compare | ast.BinOp):
            try:
                return bool(eval(compile(ast.Expression(node), "<test>", "eval"), {}, {}))  # noqa: S307
            except Exception:  # noqa: BLE001 - a literal that raises is not a constant guard
                return None
    if env is not None:
        return _environment_truth(node, env)
    return None


def cannot_fail(test: ast.expr) -> bool:
    """True when an ``assert`` condition is true whatever the program does."""
    truth = constant_truth(test) if is_literal(test) or isinstance(test, ast.Name) else None
    if truth is True:
        return True
    if truth is False:
        return False  # ``assert False``: fails whenever it is reached
    if (
        isinstance(test, ast.Tuple | ast.List | ast.Set)
        and test.elts
        and not any(isinstance(e, ast.Starred) for e in test.elts)
    ):
        return True  # a non-empty display: ``assert (x == 1, "msg")``, ``assert [x == 1]``
    if isinstance(test, ast.Dict) and test.keys and all(k is not None for k in test.keys):
        return True
    if isinstance(test, ast.JoinedStr) and any(
        isinstance(v, ast.Constant) and v.value for v in test.values
    ):
        return True  # an f-string with text of its own is never empty
    if isinstance(test, ast.Lambda):
        return True
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.IsNot)
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value is None
        and isinstance(test.left, ast.UnaryOp | ast.Compare | ast.JoinedStr | ast.Lambda)
        and not (isinstance(test.left, ast.UnaryOp) and not isinstance(test.left.op, ast.Not))
    ):
        return True  # ``(f(1) == 2) is not None``: a comparison's result is never None
    if isinstance(test, ast.IfExp):
        truth = constant_truth(test.test)
        if truth is True:
            return cannot_fail(test.body)
        if truth is False:
            return cannot_fail(test.orelse)
        return cannot_fail(test.body) and cannot_fail(test.orelse)
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], _REFLEXIVE)
        and type(test.left) is type(test.comparators[0])
        and ast.dump(test.left) == ast.dump(test.comparators[0])
    ):
        return True
    if isinstance(test, ast.BoolOp):
        if isinstance(test.op, ast.Or):
            return any(cannot_fail(v) for v in test.values)
        return all(cannot_fail(v) for v in test.values)
    # ``isinstance(x, object)`` holds for every x.
    return (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Name)
        and test.func.id == "isinstance"
        and len(test.args) == 2
        and isinstance(test.args[1], ast.Name)
        and test.args[1].id == "object"
    )


def is_check_call(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name.startswith("assert") or name in ("fail", "raises", "approx")


def _check_call_trivial(node: ast.Call) -> bool:
    args = [*node.args, *(k.value for k in node.keywords if k.arg not in ("msg",))]
    if not args or not all(is_literal(a) for a in args):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    values = [_literal_value(a) for a in node.args]
    if not all(ok for ok, _ in values):
        return True
    vals = [v for _, v in values]
    try:
        if name in ("assertTrue", "assert_") and vals:
            return bool(vals[0])
        if name == "assertFalse" and vals:
            return not vals[0]
        if name == "assertEqual" and len(vals) >= 2:
            return vals[0] == vals[1]
        if name == "assertNotEqual" and len(vals) >= 2:
            return vals[0] != vals[1]
    except Exception:  # noqa: BLE001 - odd literals compare badly; call it trivial
        return True
    return name not in ("fail",)


def solution_names(solution: str) -> set[str]:
    """Names the solution defines at top level (functions, classes, assigned variables)."""
    return set(solution_definitions(solution))


def solution_definitions(solution: str) -> dict[str, str]:
    """Top-level names of the solution and what they are: ``function``, ``class`` or ``value``."""
    tree = parse(inline_exec(solution))
    if tree is None:
        return {}
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names[node.name] = "function"
        elif isinstance(node, ast.ClassDef):
            names[node.name] = "class"
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            kind = "function" if isinstance(getattr(node, "value", None), ast.Lambda) else "value"
            for target in targets:
                for n in walk(target):
                    if isinstance(n, ast.Name):
                        names.setdefault(n.id, kind)
    return names


# ---------------------------------------------------------------------------------------
# The analysis


def auto_called(tree: ast.Module, nodes: list[ast.AST]) -> list[str]:
    """The test functions the assembly rule calls at the end: what
    ``selfalign.curate.program.uncalled_test_functions`` returns, from an index."""
    used = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    out = []
    for n in tree.body:
        if not isinstance(n, ast.FunctionDef) or not n.name.startswith("test"):
            continue
        a = n.args
        required = len(a.posonlyargs) + len(a.args) - len(a.defaults)
        required += sum(1 for d in a.kw_defaults if d is None)
        if not n.decorator_list and required == 0 and n.name not in used:
            out.append(n.name)
    return out


def _own_expressions(stmt: ast.stmt) -> list[ast.expr]:
    """The expressions of a statement, without the statements nested in it."""
    out: list[ast.expr] = []
    for name, value in ast.iter_fields(stmt):
        if name in ("body", "orelse", "finalbody", "handlers", "cases", "decorator_list"):
            continue
        if isinstance(value, ast.expr):
            out.append(value)
        elif isinstance(value, list):
            for v in value:
                if isinstance(v, ast.expr):
                    out.append(v)
                elif isinstance(v, ast.withitem):
                    out.append(v.context_expr)
                elif isinstance(v, ast.arguments):
                    out.extend(d for d in [*v.defaults, *v.kw_defaults] if d is not None)
        elif isinstance(value, ast.arguments):
            out.extend(d for d in [*value.defaults, *value.kw_defaults] if d is not None)
    return out


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in walk(node) if isinstance(n, ast.Name)}


def _raises_again(body: list[ast.stmt]) -> bool:
    """Does an ``except`` body pass the failure on (raise, check, or exit non-zero)?"""
    for stmt in body:
        for sub in walk(stmt):
            if isinstance(sub, ast.Raise | ast.Assert):
                return True
            if isinstance(sub, ast.Call) and is_check_call(sub):
                return True
            if isinstance(sub, ast.Call) and last_part(ast.unparse(sub.func)) in (
                "exit",
                "_exit",
                "abort",
            ):
                code = sub.args[0] if sub.args else None
                if code is not None and not (
                    isinstance(code, ast.Constant) and code.value in (0, None, False)
                ):
                    return True
    return False


_RESULT_READERS = {"result", "exception", "get", "wait", "successful", "ready"}
_ASYNC_RUNNERS = {"submit", "apply_async", "map_async", "starmap_async"}


def _is_unittest_check(name: str) -> bool:
    """``assertEqual``, ``fail``...: a check method of ``unittest.TestCase``."""
    return name.startswith(("assert", "fail")) and callable(getattr(unittest.TestCase, name, None))


def _probe_signal(call: ast.Call) -> bool:
    """``os.kill(pid, 0)`` only checks that the process exists: no signal is sent."""
    return (
        len(call.args) >= 2 and isinstance(call.args[1], ast.Constant) and call.args[1].value == 0
    )


def _is_test_runner_run(call: ast.Call) -> bool:
    """``unittest.TextTestRunner(...).run(suite)`` (any ``*TestRunner``)."""
    func = call.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "run"
        and isinstance(func.value, ast.Call)
        and ast.unparse(func.value.func).endswith("TestRunner")
    )


def _catches(handler: ast.ExceptHandler, bound: Mapping[str, ast.expr] | None = None) -> bool:
    """Does this handler catch a failed check (``AssertionError`` or wider)?

    ``bound`` resolves names bound once to an exception or a tuple of them
    (``Expected = AssertionError``, ``except Expected:``)."""
    if handler.type is None:
        return True
    pending = [handler.type]
    types: list[ast.expr] = []
    while pending and len(types) < 100:
        t = pending.pop()
        if isinstance(t, ast.Tuple):
            pending.extend(t.elts)
        elif isinstance(t, ast.Name) and bound and t.id in bound and bound[t.id] is not t:
            pending.append(bound[t.id])
        else:
            types.append(t)
    return any(last_part(ast.unparse(t)) in _SWALLOWING for t in types)


_MUTABLE_SCOPES = {"globals", "vars", "setattr", "exec", "eval", "locals"}
# The node types _bindings looks at (a type test first: most nodes are none of these).
_BINDING_NODES = frozenset((
    ast.Name, ast.Global, ast.Nonlocal, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
    ast.Import, ast.ImportFrom, ast.arg, ast.ExceptHandler, ast.MatchAs, ast.MatchStar,
    ast.Call,
))


def _bindings(
    tree: ast.Module, nodes: list[ast.AST], solution: str
) -> tuple[dict[str, ast.expr], dict[str, object]]:
    """Top-level names bound exactly once by a plain assignment (and nowhere else in the
    tests, nor declared ``global`` by the solution): name -> the value's expression; and
    those whose value is an immutable literal: name -> the value."""
    stores: Counter[str] = Counter()
    for n in nodes:
        if type(n) not in _BINDING_NODES:
            continue
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            stores[n.id] += 1
        elif isinstance(n, ast.Global | ast.Nonlocal):
            stores.update({name: 2 for name in n.names})
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stores[n.name] += 1
        elif isinstance(n, ast.Import | ast.ImportFrom):
            for a in n.names:
                stores[(a.asname or a.name).split(".")[0]] += 1
        elif isinstance(n, ast.arg):
            stores[n.arg] += 1
        elif isinstance(n, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and n.name:
            stores[n.name] += 1
        elif (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in _MUTABLE_SCOPES
        ) or (isinstance(n, ast.Name) and n.id == "__main__"):
            return {}, {}  # the tests may rebind names in ways not seen here
    sol = parse(solution) if "global" in solution else None
    if sol is not None:
        for n in walk(sol):
            if isinstance(n, ast.Global):
                stores.update({name: 2 for name in n.names})
    bound: dict[str, ast.expr] = {}
    constants: dict[str, object] = {}
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stores[stmt.targets[0].id] == 1
        ):
            name = stmt.targets[0].id
            bound[name] = stmt.value
            ok, value = _literal_value(stmt.value) if is_literal(stmt.value) else (False, None)
            if ok and _immutable(value):
                constants[name] = value
    return bound, constants


def _immutable(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(v) for v in value)
    return value is None or isinstance(value, bool | int | float | complex | str | bytes)


def _finally_escapes(body: list[ast.stmt]) -> bool:
    """A ``return``/``break``/``continue`` in a ``finally`` (not in a nested def or loop)."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return | ast.Break | ast.Continue):
            return True
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        if isinstance(node, ast.For | ast.While | ast.AsyncFor):
            # break/continue inside a loop of the finally belong to that loop
            stack.extend(n for n in walk(node) if isinstance(n, ast.Return))
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def _empty_iterable(node: ast.expr) -> bool:
    if isinstance(node, ast.List | ast.Tuple | ast.Set) and not node.elts:
        return True
    if isinstance(node, ast.Dict) and not node.keys:
        return True
    if isinstance(node, ast.Constant) and node.value in ("", b""):
        return True
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "range"
        and node.args
        and all(is_literal(a) for a in node.args)
    ):
        ok, values = _literal_value(ast.Tuple(elts=list(node.args), ctx=ast.Load()))
        if ok and isinstance(values, tuple):
            try:
                return len(range(*values)) == 0
            except (TypeError, ValueError):
                return False
    return False


@dataclass
class _Event:
    """Something a scope (the module or a function) does, under a local context."""

    kind: str  # "check", "run" or "unittest"
    local: str | None
    line: int = 0
    trivial: bool = False
    what: str = ""
    targets: tuple[ast.AST, ...] = ()
    family: str | None = None


Scope = ast.Module | ast.FunctionDef | ast.AsyncFunctionDef


class _Analysis:
    """One walk over the tests records events per scope; contexts then propagate over calls."""

    def __init__(self, idx: Index, solution: str) -> None:
        tree = idx.tree
        self.tree = tree
        self.nodes = idx.nodes
        self.names = Names(tree, idx.nodes)
        self.parents = idx.parents
        self.functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.owner: dict[ast.AST, ast.ClassDef] = {}
        self.aliases: dict[str, str] = {}
        self.signal_raised = False
        self.has_unittest_main = False
        self.runs_python = any(
            isinstance(n, ast.Attribute) and self.names.qualname(n) == "sys.executable"
            for n in idx.nodes
        ) or any(
            isinstance(n, ast.Constant) and isinstance(n.value, str) and "python" in n.value
            for n in idx.nodes
        )
        for node in idx.nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, ast.Call):
                name = self.names.call_name(node)
                if name in _SIGNAL_RAISERS and not _probe_signal(node):
                    self.signal_raised = True
                elif name == "unittest.main" or _is_test_runner_run(node):
                    self.has_unittest_main = True
        for cls in self.classes.values():
            for item in cls.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.owner[item] = cls
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Name)
                and node.value.id in self.functions
            ):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.aliases[t.id] = node.value.id
        self.swallowing_managers = self._swallowing_managers()
        # The assembly rule runs (and checks) TestCase classes when the tests do not call
        # ``unittest.main`` by that name (selfalign.curate.program).
        self.assembly_runs_tests = bool(testcase_classes(tree)) and not any(
            isinstance(n, ast.Call) and is_unittest_main(n.func) for n in idx.nodes
        )
        self.wrapped: dict[ast.AST, str] = {}
        self.deleted = {
            t.id
            for stmt in tree.body
            if isinstance(stmt, ast.Delete)
            for t in stmt.targets
            if isinstance(t, ast.Name)
        }
        self.values: dict[str, list[ast.expr]] = {}
        self.fork_names: set[str] = set()
        for node in idx.nodes:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.values.setdefault(t.id, []).append(node.value)
                        if isinstance(node.value, ast.Call) and self.names.call_name(
                            node.value
                        ) in ("os.fork", "os.forkpty", "pty.fork"):
                            self.fork_names.add(t.id)
        # Futures and async results whose outcome the tests read somewhere.
        self.results_read = any(
            (isinstance(n, ast.Attribute) and n.attr in _RESULT_READERS)
            or (
                isinstance(n, ast.Call)
                and last_part(self.names.call_name(n)) in ("as_completed", "wait")
            )
            for n in idx.nodes
        )
        self.bound, constants = _bindings(tree, idx.nodes, solution)
        self.env: dict[str, object] = {**PROGRAM_NAMES, **constants}
        self._skip_stack: set[ast.AST] = set()
        self.defined = solution_definitions(solution)
        self.mocked: set[str] = set()
        self.events: dict[ast.AST, list[_Event]] = {}
        self.current: list[_Event] = []
        self.class_ctx: dict[ast.ClassDef, str | None] = {}
        self.in_module = True
        self.result = TestAnalysis()
        self._seen_findings: set[tuple[str, int]] = set()

    # -- bookkeeping -----------------------------------------------------------------

    def truth(self, node: ast.expr) -> bool | None:
        """:func:`constant_truth` with the names the program fixes (``__name__``, constants)."""
        return constant_truth(node, self.env)

    def finding(self, family: str, line: int, detail: str) -> None:
        if (family, line) in self._seen_findings:
            return
        self._seen_findings.add((family, line))
        self.result.findings.append(Finding(family, line, detail))

    def runs(self, targets: list[ast.AST], ctx: str | None, family: str | None = None) -> None:
        if targets:
            self.current.append(_Event("run", ctx, targets=tuple(targets), family=family))

    def count(self, line: int, ctx: str | None, trivial: bool, what: str = "check") -> None:
        self.current.append(_Event("check", ctx, line=line, trivial=trivial, what=what))

    # -- set-up ------------------------------------------------------------------------

    def _swallowing_managers(self) -> set[str]:
        """Local classes whose ``__exit__`` returns a true constant: they swallow errors."""
        out: set[str] = set()
        for name, cls in self.classes.items():
            for item in cls.body:
                if isinstance(item, ast.FunctionDef) and item.name in ("__exit__", "__aexit__"):
                    rets = [n for n in walk(item) if isinstance(n, ast.Return)]
                    if rets and all(
                        r.value is not None and constant_truth(r.value) is True for r in rets
                    ):
                        out.add(name)
        return out

    def _local_bases(self, cls: ast.ClassDef, depth: int) -> list[ast.ClassDef]:
        """The base classes of ``cls`` defined in the program (none past a depth of 10)."""
        if depth >= 10:
            return []
        found = (self.classes.get(last_part(self.names.qualname(b) or "")) for b in cls.bases)
        return [local for local in found if local is not None and local is not cls]

    def _is_testcase(self, cls: ast.ClassDef, depth: int = 0) -> bool:
        for base in cls.bases:
            if last_part(self.names.qualname(base) or "") in (
                "TestCase",
                "IsolatedAsyncioTestCase",
            ):
                return True
        return any(self._is_testcase(b, depth + 1) for b in self._local_bases(cls, depth))

    def _class_has_tests(self, cls: ast.ClassDef, depth: int = 0) -> bool:
        for item in cls.body:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith(
                "test"
            ):
                return True
        return any(self._class_has_tests(b, depth + 1) for b in self._local_bases(cls, depth))

    def _decorator_names(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ) -> list[tuple[str, ast.expr]]:
        out = []
        for d in node.decorator_list:
            if isinstance(d, ast.Name) and isinstance(self.bound.get(d.id), ast.Call):
                d = self.bound[d.id]  # ``later = unittest.skip("..."); @later``
            target = d.func if isinstance(d, ast.Call) else d
            out.append((self.names.qualname(target) or "", d))
        return out

    def _skip_decorator(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ) -> str | None:
        for name, d in self._decorator_names(node):
            short = last_part(name)
            if short == "skip" or name.endswith("mark.skip"):
                return "skipped"
            if short == "expectedFailure":
                return "expected_failure"
            if short in ("skipIf", "skipUnless") and isinstance(d, ast.Call) and d.args:
                truth = self.truth(d.args[0])
                if (short == "skipIf" and truth is True) or (
                    short == "skipUnless" and truth is False
                ):
                    return "skipped"
        return None

    def _class_skipped(self, cls: ast.ClassDef) -> str | None:
        reason = self._skip_decorator(cls)
        if reason:
            return reason
        for node in self.tree.body:
            if (
                isinstance(node, ast.FunctionDef)
                and node.name == "setUpModule"
                and self._block_exit(node.body) == "skipped"
            ):
                return "skipped"
        for item in cls.body:
            if (
                isinstance(item, ast.Assign)
                and any(
                    isinstance(t, ast.Name) and t.id == "__unittest_skip__" for t in item.targets
                )
                and self.truth(item.value) is True
            ):
                return "skipped"
            if (
                isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and item.name in ("setUp", "setUpClass", "asyncSetUp")
                and self._block_exit(item.body) == "skipped"
            ):
                return "skipped"
        return None

    # -- the analysis ------------------------------------------------------------------

    def _overridden_checks(self) -> None:
        """A TestCase that replaces ``assertEqual`` (or another check of unittest) with one
        that cannot fail patches the test machinery for its own tests."""
        for cls in self.classes.values():
            if not self._is_testcase(cls):
                continue
            for item in cls.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    name, fails = (
                        item.name,
                        any(
                            isinstance(n, ast.Raise | ast.Assert)
                            or (isinstance(n, ast.Call) and is_check_call(n))
                            for stmt in item.body
                            for n in walk(stmt)
                        ),
                    )
                elif (
                    isinstance(item, ast.Assign)
                    and len(item.targets) == 1
                    and isinstance(item.targets[0], ast.Name)
                ):
                    value = item.value
                    name = item.targets[0].id
                    fails = not isinstance(value, ast.Lambda | ast.Constant)
                else:
                    continue
                if _is_unittest_check(name) and not fails:
                    self.finding(
                        "patches_framework",
                        item.lineno,
                        f"{cls.name}.{name} replaces unittest's check with one that cannot fail",
                    )

    def analyse(self) -> TestAnalysis:
        self._overridden_checks()
        self.current = self.events.setdefault(self.tree, [])
        self.body(self.tree.body, EFFECTIVE)
        self.in_module = False
        for fns in self.functions.values():
            for fn in fns:
                self.current = self.events.setdefault(fn, [])
                self.body(fn.body, EFFECTIVE)
        context = self._propagate()
        for scope, events in self.events.items():
            outer = context.get(scope, "never_called")
            for ev in events:
                if ev.kind != "check":
                    continue
                ctx = outer or ev.local
                if ctx is not None:
                    self.result.unreachable += 1
                    self.finding(ctx, ev.line, f"{ev.what} {_PHRASES.get(ctx, ctx)}")
                elif ev.trivial:
                    self.result.trivial.append(ev.line)
                else:
                    self.result.checks += 1
        return self.result

    def _propagate(self) -> dict[ast.AST, str | None]:
        context: dict[ast.AST, str | None] = {self.tree: EFFECTIVE}

        def reach(target: ast.AST, ctx: str | None) -> bool:
            if target not in context or (context[target] is not None and ctx is None):
                context[target] = ctx
                return True
            return False

        for name in auto_called(self.tree, self.nodes):
            for fn in self.functions.get(name, []):
                if fn in self.tree.body:
                    reach(fn, EFFECTIVE)
        for _ in range(100):
            changed = False
            events: list[str | None] = []
            for scope, ctx in list(context.items()):
                for ev in self.events.get(scope, []):
                    if ev.kind == "run":
                        for target in ev.targets:
                            changed |= reach(target, ctx or ev.local or ev.family)
                    elif ev.kind == "unittest":
                        events.append(ctx or ev.local)
            for cls, where in self.class_ctx.items():
                # The assembly rule's run at the end does not see a class deleted before.
                helper = (not self.has_unittest_main or self.assembly_runs_tests) and (
                    cls.name not in self.deleted
                )
                runner = [*events, EFFECTIVE] if helper else events
                if not runner:
                    continue
                best = EFFECTIVE if EFFECTIVE in runner else runner[0]
                if not self._is_testcase(cls) or not self._class_has_tests(cls):
                    continue
                skipped = self._class_skipped(cls)
                outer = best or where
                for item in cls.body:
                    if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        continue
                    if item.name.startswith("test"):
                        changed |= reach(item, outer or skipped or self._skip_decorator(item))
                    elif item.name in _SETUP:
                        changed |= reach(item, outer or skipped)
            if not changed:
                break
        return context

    # -- statements --------------------------------------------------------------------

    def body(self, stmts: list[ast.stmt], ctx: str | None) -> None:
        for stmt in stmts:
            self.statement(stmt, ctx)
            exit_kind = self._stmt_exit(stmt)
            if exit_kind is not None and ctx is None:
                ctx = exit_kind

    def _stmt_exit(self, stmt: ast.stmt) -> str | None:
        """How ``stmt`` leaves its block for sure: ``dead_code``, ``skipped``, or None."""
        if isinstance(stmt, ast.Return | ast.Break | ast.Continue):
            return "dead_code"
        if isinstance(stmt, ast.Raise):
            exc = stmt.exc
            target = exc.func if isinstance(exc, ast.Call) else exc
            name = self.names.qualname(target) if target is not None else None
            if name and (name in _SKIP_EXCEPTIONS or last_part(name) == "SkipTest"):
                return "skipped"
            return "dead_code"
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            name = self.names.call_name(stmt.value)
            if name in _EXITS or name.startswith("os.exec"):
                return "dead_code"
            if last_part(name) == "skipTest" or name in _SKIP_CALLS:
                return "skipped"
            # A local helper (``self.require_gpu()``) that always skips.
            helpers = [
                t
                for t in self._local_targets(stmt.value.func)
                if isinstance(t, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            if helpers and not (set(helpers) & self._skip_stack):
                self._skip_stack.update(helpers)
                try:
                    if all(self._block_exit(h.body) == "skipped" for h in helpers):
                        return "skipped"
                finally:
                    self._skip_stack.difference_update(helpers)
        if isinstance(stmt, ast.If):
            truth = True if is_main_guard(stmt) else self.truth(stmt.test)
            body_exit = self._block_exit(stmt.body)
            else_exit = self._block_exit(stmt.orelse) if stmt.orelse else None
            if truth is True:
                return body_exit
            if truth is False:
                return else_exit
            if body_exit and else_exit:
                return body_exit
        return None

    def _raises_failure(self, stmt: ast.Raise) -> bool:
        """A ``raise`` that fails the program (not a skip or a clean exit)."""
        exc = stmt.exc
        if exc is None:
            return True  # re-raise
        target = exc.func if isinstance(exc, ast.Call) else exc
        name = last_part(self.names.qualname(target) or "")
        if name == "SkipTest":
            return False
        if name == "SystemExit" and isinstance(exc, ast.Call):
            code = exc.args[0] if exc.args else None
            return code is not None and not (
                isinstance(code, ast.Constant) and code.value in (0, None, False)
            )
        return name not in ("SystemExit", "StopIteration", "GeneratorExit")

    def _block_exit(self, stmts: list[ast.stmt]) -> str | None:
        for stmt in stmts:
            kind = self._stmt_exit(stmt)
            if kind is not None:
                return kind
        return None

    def _swallows(self, stmt: ast.With | ast.AsyncWith) -> bool:
        for item in stmt.items:
            expr = item.context_expr
            if isinstance(expr, ast.Name) and expr.id in self.bound:
                expr = self.bound[expr.id]  # ``quiet = suppress(AssertionError); with quiet:``
            if isinstance(expr, ast.Call):
                name = self.names.call_name(expr)
                if last_part(name) == "suppress" and any(
                    last_part(ast.unparse(a)) in _SWALLOWING for a in expr.args
                ):
                    return True
                if last_part(name) in self.swallowing_managers:
                    return True
        return False

    def statement(self, stmt: ast.stmt, ctx: str | None) -> None:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            self._decorators(stmt, ctx)
            for expr in _own_expressions(stmt):
                self.expression(expr, ctx)
            return
        if isinstance(stmt, ast.ClassDef):
            self._decorators(stmt, ctx)
            if self.in_module:
                self.class_ctx[stmt] = ctx
            for expr in [*stmt.bases, *(k.value for k in stmt.keywords)]:
                self.expression(expr, ctx)
            for item in stmt.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    self._decorators(item, ctx)
                    for expr in _own_expressions(item):
                        self.expression(expr, ctx)
                else:
                    self.statement(item, ctx)
            return
        if isinstance(stmt, ast.Assert):
            trivial = cannot_fail(stmt.test) or self._always_true(stmt.test)
            self.count(stmt.lineno, ctx, trivial, "assert")
            self.expression(stmt.test, ctx)
            if stmt.msg is not None:
                self.expression(stmt.msg, ctx)
            return
        if isinstance(stmt, ast.Raise) and self._raises_failure(stmt):
            self.count(stmt.lineno, ctx, False, "raise")
        if isinstance(stmt, ast.Assign | ast.AugAssign | ast.AnnAssign):
            self._assignment(stmt)
        if isinstance(stmt, ast.If):
            truth = True if is_main_guard(stmt) else self.truth(stmt.test)
            self.expression(stmt.test, ctx)
            if self._is_fork_child(stmt.test):
                # ``if os.fork() == 0:``: the child's failure ends only the child.
                self.body(stmt.body, ctx or "process")
                self.body(stmt.orelse, ctx)
                return
            self.body(stmt.body, ctx if truth is not False else (ctx or "constant_guard"))
            self.body(stmt.orelse, ctx if truth is not True else (ctx or "constant_guard"))
            return
        if isinstance(stmt, ast.While):
            truth = self.truth(stmt.test)
            self.expression(stmt.test, ctx)
            self.body(stmt.body, ctx if truth is not False else (ctx or "constant_guard"))
            self.body(stmt.orelse, ctx)
            return
        if isinstance(stmt, ast.For | ast.AsyncFor):
            self.expression(stmt.iter, ctx)
            empty = _empty_iterable(stmt.iter)
            self.body(stmt.body, ctx if not empty else (ctx or "constant_guard"))
            self.body(stmt.orelse, ctx)
            return
        if isinstance(stmt, ast.Try | ast.TryStar):
            escapes = _finally_escapes(stmt.finalbody)
            swallow = escapes or any(
                _catches(h, self.bound) and not _raises_again(h.body) for h in stmt.handlers
            )
            self.body(stmt.body, ctx or ("swallowed" if swallow else None))
            for handler in stmt.handlers:
                self.body(handler.body, ctx or ("swallowed" if escapes else None))
            self.body(stmt.orelse, ctx or ("swallowed" if escapes else None))
            self.body(stmt.finalbody, ctx)
            return
        if isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                self.expression(item.context_expr, ctx)
            self._mock_region(stmt)
            self.body(stmt.body, ctx or ("swallowed" if self._swallows(stmt) else None))
            return
        if isinstance(stmt, ast.Match):
            self.expression(stmt.subject, ctx)
            for case in stmt.cases:
                self.body(case.body, ctx)
            return
        for expr in _own_expressions(stmt):
            self.expression(expr, ctx)

    def _is_object(self, node: ast.expr) -> bool:
        """A function or class (of the tests or the solution): an object that is always true."""
        if not isinstance(node, ast.Name):
            return False
        return (
            node.id in self.functions
            or node.id in self.classes
            or (self.defined.get(node.id) in ("function", "class") and node.id not in self.values)
        )

    def _always_true(self, test: ast.expr) -> bool:
        """``assert f``, ``assert not not f``, ``assert bool(f)``, ``assert callable(f)`` of a
        function or class: true whatever the program computes."""
        while True:
            if (
                isinstance(test, ast.UnaryOp)
                and isinstance(test.op, ast.Not)
                and isinstance(test.operand, ast.UnaryOp)
                and isinstance(test.operand.op, ast.Not)
            ):
                test = test.operand.operand
            elif (
                isinstance(test, ast.Call)
                and self.names.call_name(test) in ("bool", "callable")
                and len(test.args) == 1
                and not test.keywords
            ):
                test = test.args[0]
            else:
                break
        return self._is_object(test) or cannot_fail(test)

    def _is_fork_child(self, test: ast.expr) -> bool:
        """``pid == 0`` / ``not pid`` for a ``pid`` from ``os.fork()``."""

        def fork(e: ast.expr) -> bool:
            return (isinstance(e, ast.Name) and e.id in self.fork_names) or (
                isinstance(e, ast.Call) and self.names.call_name(e) == "os.fork"
            )

        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return fork(test.operand)
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq | ast.Is)
        ):
            sides = [test.left, test.comparators[0]]
            return any(fork(x) for x in sides) and any(
                isinstance(x, ast.Constant) and x.value == 0 for x in sides
            )
        return False

    def _decorators(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, ctx: str | None
    ) -> None:
        for name, d in self._decorator_names(node):
            self.expression(d, ctx)
            short = last_part(name)
            if short in ("patch", "object", "dict", "multiple") and isinstance(d, ast.Call):
                self._mock_call(d)
            if isinstance(node, ast.ClassDef):
                continue
            if name == "atexit.register":
                self.runs([node], ctx, "atexit")
            elif not self._known_decorator(name):
                # An unknown decorator may call the function: count it as run, in the
                # context a local decorator calls it in (``try: fn() except
                # AssertionError: pass`` in its wrapper swallows the checks).
                wrapped = self._wrapper_context(name)
                if wrapped is not None:
                    self.wrapped[node] = wrapped
                self.runs([node], ctx, wrapped)

    def _wrapper_context(self, name: str) -> str | None:
        """``swallowed`` when a local decorator calls the function it wraps only where a
        failure is swallowed; None otherwise (or when unknown)."""
        decorators = self.functions.get(name, [])
        if len(decorators) != 1:
            return None
        deco = decorators[0]
        params = [a.arg for a in [*deco.args.posonlyargs, *deco.args.args]]
        if not params:
            return None
        calls = [
            n
            for n in walk(deco)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == params[0]
        ]
        if not calls or not all(self._swallowed_in(c, deco) for c in calls):
            return None
        return "swallowed"

    def _swallowed_in(self, node: ast.AST, scope: ast.AST) -> bool:
        """Is ``node`` in a ``try`` body or ``with`` block of ``scope`` that swallows failures?"""
        child, parent = node, self.parents.get(node)
        while parent is not None and child is not scope:
            if (
                isinstance(parent, ast.Try | ast.TryStar)
                and child in parent.body
                and (
                    _finally_escapes(parent.finalbody)
                    or any(
                        _catches(h, self.bound) and not _raises_again(h.body)
                        for h in parent.handlers
                    )
                )
            ):
                return True
            if (
                isinstance(parent, ast.With | ast.AsyncWith)
                and child in parent.body
                and (self._swallows(parent))
            ):
                return True
            child, parent = parent, self.parents.get(parent)
        return False

    def _known_decorator(self, name: str) -> bool:
        """Decorators that never call the function they decorate."""
        short = last_part(name)
        return (
            not name
            or name in _SAFE_DECORATORS
            or short in _SAFE_DECORATORS
            or name.split(".")[0] in ("unittest", "pytest", "mock")
            or short
            in (
                "patch",
                "object",
                "dict",
                "multiple",
                "skip",
                "skipIf",
                "skipUnless",
                "expectedFailure",
                "fixture",
                "parametrize",
            )
        )

    # -- expressions -------------------------------------------------------------------

    def expression(self, node: ast.expr, ctx: str | None) -> None:
        for sub in walk(node):
            if isinstance(sub, ast.Call):
                self._call(sub, ctx)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                self._reference(sub, ctx)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.ctx, ast.Load):
                self._attribute_reference(sub, ctx)

    def _local_targets(self, node: ast.expr) -> list[ast.AST]:
        """Local functions (or a class's methods) that calling ``node`` would run."""
        if isinstance(node, ast.Name):
            name = self.aliases.get(node.id, node.id)
            if name in self.classes:
                cls = self.classes[name]
                return [
                    i
                    for i in cls.body
                    if isinstance(i, ast.FunctionDef | ast.AsyncFunctionDef)
                    and i.name.startswith("__")
                ]
            return list(self.functions.get(name, []))
        if isinstance(node, ast.Attribute):
            return list(self.functions.get(node.attr, []))
        return []

    def _call(self, call: ast.Call, ctx: str | None) -> None:
        name = self.names.call_name(call)
        if is_check_call(call):
            self.count(call.lineno, ctx, _check_call_trivial(call), f"{last_part(name)}()")
        if name == "unittest.main" or _is_test_runner_run(call):
            self.current.append(_Event("unittest", ctx or self._runner_checked(call, name)))
        targets = self._local_targets(call.func)
        self.runs([t for t in targets if t not in self.wrapped], ctx)
        for t in targets:
            if t in self.wrapped:  # the call runs the decorator's wrapper
                self.runs([t], ctx, self.wrapped[t])
        family = None
        if name in _THREADS or last_part(name) in ("Thread", "Timer", "start_new_thread"):
            family = "thread"
        elif name in _PROCESSES or last_part(name) == "Process":
            family = "process"
        elif name == "signal.signal" and not self.signal_raised:
            family = "signal"
        elif name == "atexit.register":
            family = "atexit"
        elif self._unread_async(call, name):
            family = "thread" if last_part(name) == "submit" else "process"
        if family is not None:
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                self.runs(self._local_targets(arg), ctx, family)
                if isinstance(arg, ast.Lambda):
                    for sub in walk(arg.body):
                        if isinstance(sub, ast.Call):
                            self.runs(self._local_targets(sub.func), ctx, family)
        if name in _MOCKS or last_part(name) in ("patch", "object", "setattr", "dict"):
            self._mock_call(call)
        if name in ("setattr", "delattr") and call.args:
            root = (self.names.qualname(call.args[0]) or "").split(".")[0]
            if root in ("unittest", "pytest", "builtins", "__builtins__", "doctest"):
                self.finding("patches_framework", call.lineno, f"{name}() on {root}")
        if self._runs_optimized(call, name):
            self.finding(
                "rerun_optimized", call.lineno, "the program runs again with assertions stripped"
            )
        if name in ("sys.exit", "os._exit", "exit", "quit") or name.startswith("os.exec"):
            self.finding("early_exit", call.lineno, f"{name}() ends the program")

    def _runner_checked(self, call: ast.Call, name: str) -> str | None:
        """``result_ignored`` for a test run whose outcome cannot reach the exit code: a
        ``unittest.main(exit=False)`` the assembly rule does not see (an alias) or a
        ``TextTestRunner().run(...)``, as a statement of their own."""
        if not isinstance(self.parents.get(call), ast.Expr):
            return None
        if name == "unittest.main":
            if is_unittest_main(call.func):
                return None  # the assembly rule checks its result
            exits = next((k.value for k in call.keywords if k.arg == "exit"), None)
            if exits is not None and self.truth(exits) is False:
                return "result_ignored"
            return None
        return "result_ignored"

    def _unread_async(self, call: ast.Call, name: str) -> bool:
        """``pool.submit(f)``/``pool.apply_async(f)`` when no result is ever read."""
        return (
            not self.results_read
            and isinstance(call.func, ast.Attribute)
            and last_part(name or call.func.attr) in _ASYNC_RUNNERS
        )

    def _runs_optimized(self, call: ast.Call, name: str) -> bool:
        if name in ("compile", "builtins.compile"):
            for k in call.keywords:
                if k.arg == "optimize":
                    return not (isinstance(k.value, ast.Constant) and k.value.value in (0, -1))
            return len(call.args) >= 6
        args: list[ast.expr] = [*call.args, *(k.value for k in call.keywords)]
        # ``cmd = [sys.executable, "-O", ...]; subprocess.call(cmd)``: the values of names too.
        args += [
            v for a in list(args) if isinstance(a, ast.Name) for v in self.values.get(a.id, [])
        ]
        strings: list[str] = []
        for arg in args:
            for sub in walk(arg):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    strings.append(sub.value)
                elif isinstance(sub, ast.keyword) and sub.arg:
                    strings.append(sub.arg)  # ``dict(os.environ, PYTHONOPTIMIZE="1")``
        if not strings:
            return False
        if any("PYTHONOPTIMIZE" in text for text in strings):
            return True
        optimize_flag = any(
            text in ("-O", "-OO") or text.startswith(("-O ", "-OO ")) or " -O" in text
            for text in strings
        )
        if not optimize_flag:
            return False
        return any("python" in text for text in strings) or any(
            self.names.qualname(sub) == "sys.executable"
            for arg in args
            for sub in walk(arg)
            if isinstance(sub, ast.Attribute | ast.Name)
        )

    def _reference(self, node: ast.Name, ctx: str | None) -> None:
        targets = self._local_targets(node)
        if not targets:
            return
        parent = self.parents.get(node)
        if isinstance(parent, ast.Call) and parent.func is node:
            return  # a call: handled by _call
        if self._is_plain_reference(node, parent):
            return
        if isinstance(parent, ast.Assign) and parent.value is node:
            return  # an alias: its calls are followed through self.aliases
        if self._handed_to_runner(node, parent):
            return  # Thread(target=f) and friends: handled by _call with their family
        # Handed to something that may call it (a decorator, a container, a call).
        self.runs(targets, ctx)

    def _handed_to_runner(self, node: ast.expr, parent: ast.AST | None) -> bool:
        call = self.parents.get(parent) if isinstance(parent, ast.keyword) else parent
        if not isinstance(call, ast.Call) or call.func is node:
            return False
        name = self.names.call_name(call)
        return (
            self._unread_async(call, name)
            or name in _THREADS
            or name in _PROCESSES
            or last_part(name) in ("Thread", "Timer", "Process", "start_new_thread")
            or (name == "signal.signal" and not self.signal_raised)
            or name == "atexit.register"
        )

    def _is_plain_reference(self, node: ast.expr, parent: ast.AST | None) -> bool:
        """A reference that does not run the function: ``f``, ``print(f)``, ``assert f``."""
        if isinstance(parent, ast.Expr | ast.Assert | ast.If | ast.While | ast.Compare):
            return True
        if isinstance(parent, ast.FormattedValue | ast.JoinedStr | ast.BoolOp | ast.UnaryOp):
            return True
        if isinstance(parent, ast.Call) and parent.func is not node:
            return last_part(self.names.call_name(parent)) in _NON_CALLING
        return isinstance(parent, ast.Assign) and all(
            isinstance(t, ast.Name) and t.id == "_" for t in parent.targets
        )

    def _attribute_reference(self, node: ast.Attribute, ctx: str | None) -> None:
        methods = [fn for fn in self.functions.get(node.attr, []) if fn in self.owner]
        if not methods:
            return
        parent = self.parents.get(node)
        if isinstance(parent, ast.Call) and parent.func is node:
            return
        if self._is_plain_reference(node, parent) or self._handed_to_runner(node, parent):
            return
        # ``self.helper`` passed on (``map(self.check, cases)``) may run it.
        self.runs(list(methods), ctx)

    # -- whole-test findings ----------------------------------------------------------

    def _assignment(self, stmt: ast.Assign | ast.AugAssign | ast.AnnAssign) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            qual = self.names.qualname(target) or ""
            if qual in ("sys.excepthook", "threading.excepthook", "sys.unraisablehook"):
                self.finding(
                    "tampers_reporting",
                    stmt.lineno,
                    f"{qual} is replaced: failures are reported differently",
                )
            root = qual.split(".")[0]
            if isinstance(target, ast.Attribute) and root in (
                "unittest",
                "pytest",
                "builtins",
                "__builtins__",
                "doctest",
            ):
                self.finding("patches_framework", stmt.lineno, f"assigns {qual}")
            if isinstance(target, ast.Name) and target.id == "AssertionError":
                self.finding("patches_framework", stmt.lineno, "rebinds AssertionError")
            if (
                isinstance(target, ast.Subscript)
                and (self.names.qualname(target.value) or "").endswith("environ")
                and isinstance(target.slice, ast.Constant)
                and target.slice.value == "PYTHONOPTIMIZE"
                and self.runs_python
            ):
                self.finding(
                    "rerun_optimized",
                    stmt.lineno,
                    "PYTHONOPTIMIZE makes the Python the tests start strip assertions",
                )

    def _mock_region(self, stmt: ast.With | ast.AsyncWith) -> None:
        for item in stmt.items:
            if isinstance(item.context_expr, ast.Call):
                name = self.names.call_name(item.context_expr)
                if name in _MOCKS or last_part(name) in ("patch", "object", "dict", "multiple"):
                    self._mock_call(item.context_expr)

    def _mock_call(self, call: ast.Call) -> None:
        """``patch("__main__.add")``, ``patch.object(Calc, "add")``, ``setattr(mod, "add", m)``."""
        defined = self.defined
        target = None
        first = call.args[0] if call.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            target = first.value.rsplit(".", 1)[-1]
        elif isinstance(first, ast.JoinedStr):
            target = ast.unparse(first).strip("'\"f").rsplit(".", 1)[-1]
        if (
            len(call.args) >= 2
            and isinstance(call.args[1], ast.Constant)
            and isinstance(call.args[1].value, str)
        ):
            owner = last_part(ast.unparse(call.args[0]))
            attr = call.args[1].value
            target = attr if attr in defined else owner if owner in defined else None
        if (
            first is not None
            and isinstance(first, ast.Call)
            and self.names.call_name(first) in ("globals", "vars", "locals")
        ):
            # ``patch.dict(globals(), {"add": ...})`` replaces names of the program.
            values = [a for a in call.args[1:] if isinstance(a, ast.Dict)]
            keys = [
                k.value
                for d in values
                for k in d.keys
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            ]
            keys += [k.arg for k in call.keywords if k.arg]
            for key in keys:
                if key in defined:
                    self.mocked.add(key)
                    self.finding(
                        "mocks_solution",
                        call.lineno,
                        f"the tests replace {key}, which the solution defines, with a mock",
                    )
        if target and target in defined:
            self.mocked.add(target)
            self.finding(
                "mocks_solution",
                call.lineno,
                f"the tests replace {target}, which the solution defines, with a mock",
            )


def _rebound(
    tree: ast.Module, nodes: list[ast.AST], defined: dict[str, str], names: Names
) -> dict[str, int]:
    """Solution functions/classes the tests bind again at top level: name -> first line."""
    out: dict[str, int] = {}

    def bind(name: str, line: int) -> None:
        if defined.get(name) in ("function", "class") and name not in out:
            out[name] = line

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bind(node.name, node.lineno)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in walk(t):
                    if isinstance(n, ast.Name):
                        bind(n.id, node.lineno)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for a in node.names:
                bind((a.asname or a.name).split(".")[0], node.lineno)
    for node in nodes:
        # __main__.add = ..., sys.modules[__name__].add = ...
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(t, ast.Attribute) and _is_main_module(t.value, names):
                    bind(t.attr, node.lineno)
        # globals().update(add=...), globals().update({"add": ...}), globals()[key] = ...
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("update", "setdefault", "__setitem__")
            and isinstance(node.func.value, ast.Call)
            and names.call_name(node.func.value) in ("globals", "vars", "locals")
        ):
            for k in node.keywords:
                if k.arg:
                    bind(k.arg, node.lineno)
            for a in node.args:
                if isinstance(a, ast.Dict):
                    for key in a.keys:
                        if isinstance(key, ast.Constant) and isinstance(key.value, str):
                            bind(key.value, node.lineno)
                elif isinstance(a, ast.Constant) and isinstance(a.value, str):
                    bind(a.value, node.lineno)
                else:
                    for name in _dynamic_names(defined):
                        bind(name, node.lineno)
        # globals()["add"] = ...; a computed key: any function of the solution may be
        # the one replaced.
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if not (
                    isinstance(t, ast.Subscript)
                    and isinstance(t.value, ast.Call)
                    and names.call_name(t.value) in ("globals", "vars", "locals")
                ):
                    continue
                if isinstance(t.slice, ast.Constant) and isinstance(t.slice.value, str):
                    if names.call_name(t.value) != "locals":
                        bind(t.slice.value, node.lineno)
                else:
                    for name in _dynamic_names(defined):
                        bind(name, node.lineno)
        # setattr(sys.modules[__name__], "add", ...)
        if (
            isinstance(node, ast.Call)
            and names.call_name(node) == "setattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and (
                "sys.modules" in ast.unparse(node.args[0])
                or "__main__" in ast.unparse(node.args[0])
            )
        ):
            bind(node.args[1].value, node.lineno)
    return out


def _is_main_module(node: ast.expr, names: Names) -> bool:
    """``__main__`` (imported) or ``sys.modules[...]``: the module the program runs as."""
    if names.qualname(node) == "__main__":
        return True
    return isinstance(node, ast.Subscript) and names.qualname(node.value) == "sys.modules"


def _dynamic_names(defined: dict[str, str]) -> list[str]:
    return [name for name, kind in defined.items() if kind in ("function", "class")]


def _shadowed(node: ast.Name, parents: dict[ast.AST, ast.AST]) -> bool:
    """Is this name a parameter or a local variable of a function around it (so that it
    does not refer to the solution's top-level name)?"""
    parent = parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            a = parent.args
            params = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
            params |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
            if node.id in params:
                return True
            if not isinstance(parent, ast.Lambda):
                declared = {
                    n
                    for s in walk(parent)
                    if isinstance(s, ast.Global | ast.Nonlocal)
                    for n in s.names
                }
                stored = any(
                    isinstance(s, ast.Name) and s.id == node.id and isinstance(s.ctx, ast.Store)
                    for stmt in parent.body
                    for s in walk(stmt)
                )
                if stored and node.id not in declared:
                    return True
        parent = parents.get(parent)
    return False


def _uses_solution(
    tree: ast.Module,
    nodes: list[ast.AST],
    defined: dict[str, str],
    rebound: dict[str, int],
    mocked: set[str],
    parents: dict[ast.AST, ast.AST],
) -> bool:
    """Do the tests use something the solution defines, that they did not replace first?"""
    attrs = {n.attr for n in nodes if isinstance(n, ast.Attribute)}
    top_level: set[ast.AST] | None = None
    for node in nodes:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in defined:
            if node.id in mocked or _shadowed(node, parents):
                continue
            line = rebound.get(node.id)
            if line is None:
                return True
            if top_level is None:
                top_level = set()
                for stmt in tree.body:
                    if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                        top_level.update(walk(stmt))
            if node in top_level and node.lineno < line:
                return True
    return bool((attrs & set(defined)) - set(rebound) - mocked)


def analyse_tests(tests: str, solution: str = "") -> TestAnalysis:
    """Count the checks of ``tests`` that run and could fail, and say why they are vacuous if so."""
    if not tests.strip():
        return TestAnalysis(vacuous_reason="no test code")
    # Code the tests run through exec("...")/eval("...") is analysed as their own code.
    idx = index(inline_exec(tests))
    if idx is None:
        return TestAnalysis(vacuous_reason="tests do not parse: SyntaxError")
    tree = idx.tree
    analysis = _Analysis(idx, solution)
    result = analysis.analyse()
    defined = analysis.defined
    rebound = _rebound(tree, idx.nodes, defined, analysis.names)
    for node in idx.nodes:
        # ``def test(add=lambda a, b: a + b)``: inside, ``add`` is the tests' own version.
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            a = node.args
            positional = [*a.posonlyargs, *a.args]
            pairs = list(
                zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True)
            )
            kw = zip(a.kwonlyargs, a.kw_defaults, strict=True)
            pairs += [(x, d) for x, d in kw if d is not None]
            for arg, default in pairs:
                if defined.get(arg.arg) in ("function", "class") and not (
                    isinstance(default, ast.Name) and default.id == arg.arg
                ):
                    analysis.finding(
                        "rebinds_solution",
                        node.lineno,
                        f"a parameter of the tests shadows {arg.arg}, which the solution defines",
                    )
    for name, line in rebound.items():
        analysis.finding(
            "rebinds_solution",
            line,
            f"the tests define their own {name}, which the solution defines",
        )
    mocked = analysis.mocked
    result.findings.sort(key=lambda f: (f.line, f.family))
    for family, phrase in BLOCKING.items():
        lines = [f.line for f in result.findings if f.family == family]
        if lines:
            result.vacuous_reason = f"{phrase} (line {lines[0]})"
            return result
    if result.checks == 0:
        neutral = Counter(f.family for f in result.findings if f.family in CHECK_FAMILIES)
        if neutral:
            parts = []
            for family, n in neutral.most_common():
                first = min(f.line for f in result.findings if f.family == family)
                parts.append(f"{n} {_PHRASES[family]} (line {first})")
            result.vacuous_reason = "no check that runs can fail: " + "; ".join(parts)
        elif result.trivial:
            lines = ", ".join(str(n) for n in result.trivial[:5])
            result.vacuous_reason = f"every check cannot fail (line {lines})"
        else:
            result.vacuous_reason = "no assert"
        return result
    if defined and not _uses_solution(tree, idx.nodes, defined, rebound, mocked, idx.parents):
        replaced = sorted(set(rebound) | mocked)
        if replaced:
            lines = [
                f.line
                for f in result.findings
                if f.family in ("rebinds_solution", "mocks_solution")
            ]
            result.vacuous_reason = (
                "the tests replace what they test: "
                + ", ".join(replaced)
                + (f" (line {min(lines)})" if lines else "")
            )
        else:
            result.vacuous_reason = "the tests never use anything the solution defines"
    return result
