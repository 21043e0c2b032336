"""The assembly rule: how one attempt becomes one program for the sandbox.

The program is the attempt's solution code, then its test code, run as
``__main__`` with an empty stdin. Four adjustments make the verdict mean "the
answer's own tests pass", not "the program happened to exit 0":

1. A top-level ``if __name__ == "__main__":`` block in the **solution** is removed.
   It is a demo or reads input (stdin is empty in the sandbox, so ``input()``
   would fail), and it is not the tests; the tests are what the program is for.
   Main blocks in the **tests** are kept: they are how tests are often started.
2. A ``unittest.main(...)`` call in the tests would end the program with
   ``SystemExit`` even when every test passes, which the sandbox counts as a
   failure (the code did not run to its end). It is replaced by a helper that runs
   ``unittest.main(..., exit=False)`` and raises ``AssertionError`` when a test failed.
3. Tests that define ``unittest.TestCase`` classes but never call ``unittest.main``
   get that helper called at the end, so their test methods actually run.
4. Top-level ``test_*`` functions without required parameters that the tests
   never call (pytest style) are called at the end, in definition order.

Code that does not parse is left as it is: the program then fails with a
``SyntaxError``, which is the honest verdict. The program's hash (sha256 of its
text) is the key of the verdict cache.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

UNITTEST_HELPER = "_selfalign_unittest_main"

_HELPER_SOURCE = f"""\
def {UNITTEST_HELPER}(*args, **kwargs):
    # Added by selfalign: run unittest without ending the program with SystemExit.
    import unittest as _unittest

    kwargs["exit"] = False
    kwargs.setdefault("argv", ["program"])
    if not _unittest.main(*args, **kwargs).result.wasSuccessful():
        raise AssertionError("unittest reported failing tests")
"""


@dataclass
class AssembledProgram:
    """The program text that runs in the sandbox, its hash, and what the assembly changed."""

    code: str
    program_hash: str
    notes: list[str] = field(default_factory=list)


def program_hash(code: str) -> str:
    """The sha256 of a program's text: the key under which its verdict is cached."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


def _remove_lines(code: str, spans: list[tuple[int, int]]) -> str:
    lines = code.splitlines(keepends=True)
    drop: set[int] = set()
    for start, end in spans:
        drop.update(range(start - 1, end))
    return "".join(line for i, line in enumerate(lines) if i not in drop)


def strip_main_guard(code: str) -> tuple[str, list[str]]:
    """Remove top-level ``if __name__ == "__main__":`` blocks; return the code and notes."""
    body, notes = _strip_main_guard(code)
    return body, list(notes)


@lru_cache(maxsize=512)
def _strip_main_guard(code: str) -> tuple[str, tuple[str, ...]]:
    # Cached: the verifier asks again for each answer it checks.
    tree = _parse(code)
    if tree is None:
        return code, ()
    spans = [
        (node.lineno, node.end_lineno or node.lineno) for node in tree.body if is_main_guard(node)
    ]
    if not spans:
        return code, ()
    notes = tuple(f"removed the solution's __main__ block (lines {a}-{b})" for a, b in spans)
    return _remove_lines(code, spans), notes


def is_unittest_main(func: ast.expr) -> bool:
    """``unittest.main`` spelled so: what the assembly rule replaces by a checked run."""
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "main"
        and isinstance(func.value, ast.Name)
        and func.value.id == "unittest"
    )


def _is_testcase_class(node: ast.stmt) -> bool:
    if not isinstance(node, ast.ClassDef):
        return False
    for base in node.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        if name in ("TestCase", "IsolatedAsyncioTestCase"):
            return True
    return False


def testcase_classes(tree: ast.Module) -> list[ast.ClassDef]:
    """Top-level ``unittest.TestCase`` subclasses of a test module."""
    return [n for n in tree.body if isinstance(n, ast.ClassDef) and _is_testcase_class(n)]


def _takes_no_arguments(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    a = fn.args
    required_positional = len(a.posonlyargs) + len(a.args) - len(a.defaults)
    required_kwonly = sum(1 for d in a.kw_defaults if d is None)
    return required_positional == 0 and required_kwonly == 0


def loaded_names(tree: ast.AST) -> set[str]:
    """Every name read anywhere in the tree (calls, references, attribute bases)."""
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def uncalled_test_functions(tree: ast.Module) -> list[str]:
    """Top-level sync ``test_*`` functions with no required parameters that nothing references."""
    used = loaded_names(tree)
    return [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef)
        and n.name.startswith("test")
        and not n.decorator_list
        and _takes_no_arguments(n)
        and n.name not in used
    ]


def _byte_offset_slices(code: str, edits: list[tuple[int, int, int, int, str]]) -> str:
    """Replace (line, col, end_line, end_col) spans, given as ast's UTF-8 byte columns."""
    lines = code.splitlines(keepends=True)
    raw = [line.encode("utf-8") for line in lines]
    starts = [0]
    for line in raw:
        starts.append(starts[-1] + len(line))
    blob = b"".join(raw)
    for line, col, end_line, end_col, text in sorted(edits, reverse=True):
        a = starts[line - 1] + col
        b = starts[end_line - 1] + end_col
        blob = blob[:a] + text.encode("utf-8") + blob[b:]
    return blob.decode("utf-8")


def prepare_tests(tests: str) -> tuple[str, list[str], bool]:
    """Apply rules 2-4 to the test code: returns (code, notes, needs_unittest_helper)."""
    code, notes, helper = _prepare_tests(tests)
    return code, list(notes), helper


@lru_cache(maxsize=512)
def _prepare_tests(tests: str) -> tuple[str, tuple[str, ...], bool]:
    # Cached: answers to one task share their tests, and the verifier asks again.
    tree = _parse(tests)
    if tree is None:
        return tests, (), False
    notes: list[str] = []
    edits: list[tuple[int, int, int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and is_unittest_main(node.func):
            f = node.func
            assert f.end_lineno is not None and f.end_col_offset is not None
            edits.append((f.lineno, f.col_offset, f.end_lineno, f.end_col_offset, UNITTEST_HELPER))
    code = _byte_offset_slices(tests, edits) if edits else tests
    if edits:
        notes.append("unittest.main() runs without SystemExit and fails on failing tests")
    if not code.endswith("\n"):
        code += "\n"
    epilogue: list[str] = []
    if not edits and testcase_classes(tree):
        epilogue.append(f"{UNITTEST_HELPER}()")
        notes.append("ran the unittest.TestCase classes the tests never started")
    uncalled = uncalled_test_functions(tree)
    if uncalled:
        epilogue.extend(f"{name}()" for name in uncalled)
        notes.append("called test functions the tests never called: " + ", ".join(uncalled))
    if epilogue:
        code += "\n# Added by selfalign: start the tests that were defined but never run.\n"
        code += "\n".join(epilogue) + "\n"
    helper = bool(edits) or any(e.startswith(UNITTEST_HELPER) for e in epilogue)
    return code, tuple(notes), helper


def assemble(solution: str, tests: str) -> AssembledProgram:
    """The program run for one attempt: solution (minus its main block), then the tests."""
    body, notes = strip_main_guard(solution)
    test_code, test_notes, needs_helper = prepare_tests(tests)
    parts = [body.rstrip("\n") + "\n"] if body.strip() else []
    if needs_helper:
        parts.append("\n\n" + _HELPER_SOURCE)
    if test_code.strip():
        parts.append("\n\n" + test_code)
    code = "".join(parts)
    return AssembledProgram(code=code, program_hash=program_hash(code), notes=notes + test_notes)
