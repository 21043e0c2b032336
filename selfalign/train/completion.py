"""What the rewards read from a completion: its text, its solution code, and its format.

A completion is read the way the data stages read an answer
(:func:`selfalign.generation.parse.parse_answer`): the Python blocks before a tests
block are the solution; the completion's own tests are not what is run, the
task's are.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from typing import Any

from selfalign.generation.parse import PY_LANGS, code_blocks, parse_answer


def completion_text(completion: Any) -> str:
    """The text of a completion: TRL passes a string, or a list of messages in chat form."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


@dataclass(frozen=True)
class CompletionCode:
    """The solution code of a completion and what the format reward needs to know of it."""

    solution: str
    solution_blocks: int
    closed: bool


def completion_code(text: str) -> CompletionCode:
    """The solution of an answer: its Python blocks before a tests block (as the data stages
    read answers; a completion's own tests are not run, the task's are)."""
    parsed = parse_answer(text)
    python = [b for b in code_blocks(text) if b.lang in PY_LANGS]
    count = len(python) - (1 if parsed.tests.strip() else 0)
    return CompletionCode(
        solution=parsed.solution, solution_blocks=count, closed=all(b.closed for b in python)
    )


def parse_module(code: str) -> ast.Module | None:
    """The module's syntax tree, or ``None`` when the code does not parse."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


_BUILTINS = frozenset(dir(builtins))


def called_names(tests: str) -> set[str]:
    """The functions and classes the tests call but do not define or import themselves."""
    tree = parse_module(tests)
    if tree is None:
        return set()
    called = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            own.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
    return called - own - _BUILTINS


def defined_names(code: str) -> set[str]:
    """Names a module binds at its top level (functions, classes, assignments, imports)."""
    tree = parse_module(code)
    if tree is None:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def format_score(text: str, tests: str) -> float:
    """1.0 for one closed, parsable solution block defining what the tests call; else 0.0."""
    code = completion_code(text)
    if code.solution_blocks != 1 or not code.closed or parse_module(code.solution) is None:
        return 0.0
    return 1.0 if called_names(tests) <= defined_names(code.solution) else 0.0
