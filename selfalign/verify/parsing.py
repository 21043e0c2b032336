"""One parse per source text: the static checks share a read-only syntax tree."""

from __future__ import annotations

import ast
import copy
from functools import lru_cache


@lru_cache(maxsize=256)
def parse(source: str) -> ast.Module | None:
    """The syntax tree of ``source``, or None when it does not parse.

    The tree is shared by every caller: treat it as read-only (copy it before
    transforming it).
    """
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


class Source:
    """Slices of a source text by ast positions (lines are 1-based, columns UTF-8 bytes)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.blob = text.encode("utf-8")
        starts = [0]
        for line in text.splitlines(keepends=True):
            starts.append(starts[-1] + len(line.encode("utf-8")))
        self.starts = starts

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int] | None:
        end_line = getattr(node, "end_lineno", None)
        end_col = getattr(node, "end_col_offset", None)
        if end_line is None or end_col is None:
            return None
        return (
            self.offset(node.lineno, node.col_offset),  # type: ignore[attr-defined]
            self.offset(end_line, end_col),
        )

    def segment(self, node: ast.AST) -> str | None:
        span = self.span(node)
        if span is None:
            return None
        return self.blob[span[0] : span[1]].decode("utf-8", errors="replace")

    def replace(self, start: int, end: int, text: str) -> str:
        return (self.blob[:start] + text.encode("utf-8") + self.blob[end:]).decode("utf-8")


_CONTAINERS = (ast.List, ast.Tuple, ast.Set)
_CONTAINER_TYPES = frozenset((*_CONTAINERS, ast.Dict))


def is_literal_data(node: ast.AST) -> bool:
    """A long list/tuple/set/dict of constants: data, whose members :func:`walk` skips."""
    return type(node) in _CONTAINER_TYPES and _literal_container(node)


def _literal_container(node: ast.AST) -> bool:
    """A list/tuple/set/dict of constants only (data in tests; nothing to analyse inside)."""
    if isinstance(node, _CONTAINERS):
        elts = node.elts  # type: ignore[attr-defined]
    elif isinstance(node, ast.Dict):
        elts = [*node.keys, *node.values]
    else:
        return False
    return len(elts) > 4 and all(
        isinstance(e, ast.Constant)
        or (isinstance(e, ast.UnaryOp) and isinstance(e.operand, ast.Constant))
        for e in elts
    )


class Index:
    """A parsed source with every node (see :func:`walk`) and each node's parent."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.parents: dict[ast.AST, ast.AST] = {}
        self.nodes = walk(tree, self.parents)


@lru_cache(maxsize=256)
def index(source: str) -> Index | None:
    """The shared :class:`Index` of ``source``, or None when it does not parse."""
    tree = parse(source)
    return None if tree is None else Index(tree)


def walk(node: ast.AST, parents: dict[ast.AST, ast.AST] | None = None) -> list[ast.AST]:
    """Every node under ``node`` (itself included), like ``ast.walk``, but without the
    members of long all-constant lists, tuples, sets and dicts: the static checks never
    look inside data, and test data can be most of a test file's nodes."""
    out: list[ast.AST] = []
    stack = [node]
    AST = ast.AST
    while stack:
        n = stack.pop()
        out.append(n)
        if is_literal_data(n):
            continue
        for name in n._fields:
            value = getattr(n, name, None)
            if isinstance(value, AST):
                stack.append(value)
                if parents is not None:
                    parents[value] = n
            elif isinstance(value, list):
                for v in value:
                    if isinstance(v, AST):
                        stack.append(v)
                        if parents is not None:
                            parents[v] = n
    return out


class _Inliner(ast.NodeTransformer):
    """``exec("<code>")`` statements become that code; ``eval("<expr>")`` that expression."""

    def __init__(self) -> None:
        self.changed = False

    @staticmethod
    def _code(node: ast.AST, name: str) -> str | None:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == name
            and len(node.args) >= 1
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            return node.args[0].value
        return None

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field_name, value in ast.iter_fields(node):
            if not isinstance(value, list) or not value or not isinstance(value[0], ast.stmt):
                continue
            out: list[ast.AST] = []
            for stmt in value:
                code = self._code(stmt.value, "exec") if isinstance(stmt, ast.Expr) else None
                tree = parse(code) if code is not None else None
                if tree is not None and tree.body:
                    self.changed = True
                    body = [self.visit(s) for s in copy.deepcopy(tree).body]
                    for s in body:
                        ast.copy_location(s, stmt)
                    out.extend(body)
                else:
                    out.append(stmt)
            setattr(node, field_name, out)
        return super().generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        code = self._code(node, "eval")
        if code is not None:
            try:
                expr = ast.parse(code.strip(), mode="eval").body
            except (SyntaxError, ValueError, MemoryError, RecursionError):
                expr = None
            if expr is not None:
                self.changed = True
                return ast.copy_location(expr, node)
        return self.generic_visit(node)


@lru_cache(maxsize=256)
def inline_exec(source: str) -> str:
    """``source`` with the constant strings it runs through ``exec``/``eval`` written out
    as code, so that the static checks see them; ``source`` itself when there are none."""
    if "exec" not in source and "eval" not in source:
        return source
    tree = parse(source)
    if tree is None:
        return source
    inliner = _Inliner()
    new = inliner.visit(copy.deepcopy(tree))
    if not inliner.changed:
        return source
    try:
        return ast.unparse(ast.fix_missing_locations(new)) + "\n"
    except (ValueError, RecursionError):
        return source
