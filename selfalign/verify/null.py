"""The null implementation of a solution: every function it defines returns ``None``.

Tests that still pass when the solution does nothing do not test it. The null
implementation keeps the solution's shape, so that every call the tests make still
binds: a function keeps its name, decorators and signature (defaults included) and
its body becomes ``return None``; a class keeps its name, bases, decorators and
class attributes, and each of its methods is nulled the same way; a ``lambda``
becomes ``lambda ...: None``. Imports and every other top-level statement stay, so
constants and module set-up the tests use are still there.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field


@dataclass
class NullImplementation:
    """The nulled solution and the functions it replaced."""

    code: str
    nulled: list[str] = field(default_factory=list)
    """Qualified names of the functions and methods replaced (``Stack.push``, ``<lambda>``)."""

    @property
    def applicable(self) -> bool:
        """False when the solution defines no function: there is nothing to null."""
        return bool(self.nulled)


class _Nuller(ast.NodeTransformer):
    def __init__(self) -> None:
        self.scope: list[str] = []
        self.nulled: list[str] = []

    def _null_function(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> ast.FunctionDef | ast.AsyncFunctionDef:
        # Decorators and defaults are evaluated when the def runs: visit them (their
        # lambdas are nulled too) but keep them, so that the function still binds.
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args = self.visit(node.args)
        self.nulled.append(".".join([*self.scope, node.name]))
        node.body = [ast.Return(value=ast.Constant(value=None))]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._null_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._null_function(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.scope.append(node.name)
        try:
            self.generic_visit(node)
        finally:
            self.scope.pop()
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        node.args = self.visit(node.args)
        self.nulled.append(".".join([*self.scope, "<lambda>"]))
        node.body = ast.Constant(value=None)
        return node


def null_implementation(solution: str) -> NullImplementation | None:
    """The solution with every function and method returning ``None``; None if it does not parse.

    When the solution defines no function, ``code`` is the solution unchanged and
    ``applicable`` is False.
    """
    try:
        tree = ast.parse(solution)
    except (SyntaxError, ValueError):
        return None
    nuller = _Nuller()
    tree = nuller.visit(tree)
    if not nuller.nulled:
        return NullImplementation(code=solution, nulled=[])
    ast.fix_missing_locations(tree)
    code = ast.unparse(tree)
    if not code.endswith("\n"):
        code += "\n"
    return NullImplementation(code=code, nulled=nuller.nulled)
