"""Mutants of a solution: small edits that a test worth the name notices.

Each mutant changes one place of the solution's source text; everything else,
formatting and comments included, stays as written, so line numbers still point
at the original. The operators:

==================  =========================================================
``constant``        a number ``n`` -> ``n + 1`` (``1`` -> ``0``), ``True`` <-> ``False``,
                    a string ``s`` -> ``s + "X"``
``comparison``      ``<`` <-> ``<=``, ``<`` -> ``>=``, ``==`` <-> ``!=``, ``in`` <->
                    ``not in``, ``is`` <-> ``is not`` (and the mirrored ones)
``boolean``         ``and`` <-> ``or``; ``not x`` -> ``x``
``arithmetic``      ``+`` <-> ``-``, ``*`` <-> ``/``, ``//`` -> ``/``, ``%`` -> ``//``,
                    ``**`` -> ``*``, bit operators swapped; ``-x`` -> ``x``; the same in
                    ``x += ...`` statements
``return_none``     ``return x`` -> ``return None``, in functions with more than one
                    ``return`` (with one, that is the null implementation again)
``range``           off by one: ``range(a, b)`` -> ``range(a, b + 1)`` / ``range(a + 1, b)``
``slice``           off by one: ``x[a:b]`` -> ``x[a + 1:b]`` / ``x[a:b + 1]``
``negate``          ``if c:`` / ``while c:`` / ``x if c else y`` / ``for x in xs if c``
                    -> ``not (c)``
``remove_branch``   the body of an ``if`` becomes ``pass``
``remove_statement`` a call statement, an augmented assignment, an assignment to an
                    attribute or item, a ``raise``, ``break`` or ``continue`` becomes ``pass``
``swap_call``       ``min`` <-> ``max``, ``any`` <-> ``all``
``skip_call``       a one-argument call becomes its argument (``sorted(xs)`` -> ``xs``), a
                    method call its receiver (``s.strip()`` -> ``s``)
``loop_control``    ``break`` <-> ``continue``
==================  =========================================================

Not mutated: docstrings, annotations, imports, decorators, f-strings, code after a
``return``/``raise``/``break``/``continue`` in the same block (it never runs), and the
arguments of ``raise``, ``print``, ``assert`` messages and logging calls (edits
there change messages, not behaviour the tests can be expected to check).

:func:`select_mutants` draws a seeded sample: the same code, count and seed give
the same mutants on every machine. Mutants that may loop forever (edits inside a
``while`` loop, ``break``/``continue`` changes) are ``risky`` and sorted last, so a
check that stops early rarely has to wait for one to time out.
"""

from __future__ import annotations

import ast
import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from selfalign.verify.parsing import Source, parse

OPERATORS = (
    "constant",
    "comparison",
    "boolean",
    "arithmetic",
    "return_none",
    "range",
    "slice",
    "negate",
    "remove_branch",
    "remove_statement",
    "swap_call",
    "skip_call",
    "loop_control",
)

_CMP_SWAPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.GtE),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.LtE),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
_BIN_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitAnd,
    ast.MatMult: ast.Mult,
}
_CALL_SWAPS = {"min": "max", "max": "min", "any": "all", "all": "any"}
# Skipping these is too often no change at all (``sorted(list(s))``, ``int(n)`` of an int).
_CONVERSIONS = {"list", "tuple", "set", "frozenset", "dict", "iter", "int", "float", "str",
                "bool", "repr", "print"}
_QUIET_CALLS = {
    "print", "debug", "info", "warning", "warn", "error", "exception", "critical", "log",
}
_MAX_SHOWN = 60


@dataclass(frozen=True)
class Mutant:
    """One mutant: the whole mutated solution and what was changed where."""

    code: str
    operator: str
    line: int
    description: str
    risky: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Everything but the code: what a verdict keeps about a mutant."""
        data = asdict(self)
        del data["code"]
        return data


@dataclass(frozen=True)
class _Site:
    """A place an operator applies; the replacement text is built only if it is drawn."""

    operator: str
    start: int
    end: int
    line: int
    make: Callable[[], str | None]
    before: Callable[[], str]
    risky: bool


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


class _Sites:
    """Walks a module and lists every place an operator applies (no text is built yet)."""

    def __init__(self, source: str, tree: ast.Module) -> None:
        self.src = Source(source)
        self.tree = tree
        self.sites: list[_Site] = []
        self.returns = 0
        self.modules = {
            (a.asname or a.name).split(".")[0]
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom)
            for a in node.names
        }

    # -- helpers ---------------------------------------------------------------------

    def _segment(self, node: ast.AST) -> str | None:
        return self.src.segment(node)

    def _add(self, operator: str, node: ast.AST, make: Callable[[], str | None] | str,
             risky: bool, before: Callable[[], str] | None = None) -> None:
        span = self.src.span(node)
        if span is None:
            return
        maker = make if callable(make) else (lambda text=make: text)
        shown = before or (lambda: self._segment(node) or "")
        self.sites.append(_Site(operator, span[0], span[1], node.lineno,  # type: ignore[attr-defined]
                                maker, shown, risky))

    def _add_span(self, operator: str, first: ast.stmt, last: ast.stmt, text: str, risky: bool,
                  before: Callable[[], str]) -> None:
        a = self.src.span(first)
        b = self.src.span(last)
        if a is None or b is None:
            return
        self.sites.append(_Site(operator, a[0], b[1], first.lineno, lambda: text, before, risky))

    def _replace_expr(self, operator: str, node: ast.expr, make: Callable[[], ast.expr],
                      risky: bool) -> None:
        self._add(operator, node, lambda: "(" + ast.unparse(make()) + ")", risky)

    def _wrapped(self, node: ast.expr, template: str) -> Callable[[], str | None]:
        def make() -> str | None:
            seg = self._segment(node)
            return None if seg is None else template.format(seg)

        return make

    # -- walk --------------------------------------------------------------------------

    def run(self) -> list[_Site]:
        self._body(self.tree.body, loop=False)
        return self.sites

    def _body(self, body: list[ast.stmt], loop: bool) -> None:
        for i, stmt in enumerate(body):
            if (
                i == 0
                and isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                continue  # a docstring
            self._stmt(stmt, loop)
            if isinstance(stmt, ast.Return | ast.Raise | ast.Break | ast.Continue):
                break  # what follows never runs: its mutants could not be killed

    def _stmt(self, stmt: ast.stmt, loop: bool) -> None:
        if isinstance(stmt, ast.Import | ast.ImportFrom | ast.Global | ast.Nonlocal):
            return
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            for default in [*stmt.args.defaults, *(d for d in stmt.args.kw_defaults if d)]:
                self._expr(default, loop=False)
            outer = self.returns
            self.returns = _count_returns(stmt)
            self._body(stmt.body, loop=False)  # a new function: not inside the caller's loop
            self.returns = outer
            return
        if isinstance(stmt, ast.ClassDef):
            self._body(stmt.body, loop=False)
            return
        if isinstance(stmt, ast.Return):
            if stmt.value is not None:
                # With a single return, ``return None`` is the null implementation of the
                # function again, which the null check already runs.
                if self.returns > 1 and not (
                    isinstance(stmt.value, ast.Constant) and stmt.value.value is None
                ):
                    self._add("return_none", stmt, "return None", loop)
                self._expr(stmt.value, loop)
            return
        if isinstance(stmt, ast.Raise):
            self._add("remove_statement", stmt, "pass", loop)
            return  # its message is not behaviour
        if isinstance(stmt, ast.Assert):
            self._expr(stmt.test, loop)
            return
        if isinstance(stmt, ast.Break | ast.Continue):
            other = "continue" if isinstance(stmt, ast.Break) else "break"
            self._add("loop_control", stmt, other, True)
            self._add("remove_statement", stmt, "pass", True)
            return
        if isinstance(stmt, ast.AugAssign):
            swap = _BIN_SWAPS.get(type(stmt.op))
            if swap is not None:
                aug = stmt
                self._add("arithmetic", stmt, lambda: ast.unparse(
                    ast.AugAssign(target=aug.target, op=swap(), value=aug.value)), loop)
            self._add("remove_statement", stmt, "pass", loop)
            self._expr(stmt.value, loop)
            return
        if isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Call) and not self._quiet(stmt.value):
                self._add("remove_statement", stmt, "pass", loop)
            self._expr(stmt.value, loop)
            return
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Attribute | ast.Subscript) for t in targets):
                self._add("remove_statement", stmt, "pass", loop)
            for t in targets:
                if isinstance(t, ast.Subscript):
                    self._expr(t.slice, loop)
            if stmt.value is not None:
                self._expr(stmt.value, loop)
            return
        if isinstance(stmt, ast.If):
            self._condition(stmt.test, loop)
            test = stmt.test
            self._add_span("remove_branch", stmt.body[0], stmt.body[-1], "pass", loop,
                           lambda: "the body of `if " + _short(self._segment(test) or "") + "`")
            self._expr(stmt.test, loop)
            self._body(stmt.body, loop)
            self._body(stmt.orelse, loop)
            return
        if isinstance(stmt, ast.While):
            self._condition(stmt.test, True)
            self._expr(stmt.test, True)
            self._body(stmt.body, True)
            self._body(stmt.orelse, loop)
            return
        if isinstance(stmt, ast.For | ast.AsyncFor):
            self._expr(stmt.iter, loop)
            self._body(stmt.body, loop)
            self._body(stmt.orelse, loop)
            return
        if isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                self._expr(item.context_expr, loop)
            self._body(stmt.body, loop)
            return
        if isinstance(stmt, ast.Try | ast.TryStar):
            self._body(stmt.body, loop)
            for handler in stmt.handlers:
                self._body(handler.body, loop)
            self._body(stmt.orelse, loop)
            self._body(stmt.finalbody, loop)
            return
        if isinstance(stmt, ast.Match):
            self._expr(stmt.subject, loop)
            for case in stmt.cases:
                self._body(case.body, loop)
            return
        # Delete, Pass, TypeAlias ...: nothing to mutate.

    def _quiet(self, call: ast.Call) -> bool:
        return _call_name(call) in _QUIET_CALLS

    def _condition(self, test: ast.expr, risky: bool) -> None:
        self._add("negate", test, self._wrapped(test, "not ({})"), risky)

    def _expr(self, node: ast.expr, loop: bool) -> None:
        stack: list[ast.AST] = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.JoinedStr):
                continue  # f-string positions are unreliable before Python 3.12
            if isinstance(n, ast.Call) and self._quiet(n):
                continue
            self._expr_node(n, loop)
            stack.extend(reversed(list(ast.iter_child_nodes(n))))

    def _expr_node(self, n: ast.AST, loop: bool) -> None:
        if isinstance(n, ast.Constant):
            self._constant(n, loop)
        elif isinstance(n, ast.Compare):
            for i, op in enumerate(n.ops):
                for swap in _CMP_SWAPS.get(type(op), ()):
                    def make(n: ast.Compare = n, i: int = i, swap: type = swap) -> ast.expr:
                        ops = list(n.ops)
                        ops[i] = swap()
                        return ast.Compare(left=n.left, ops=ops, comparators=n.comparators)

                    self._replace_expr("comparison", n, make, loop)
        elif isinstance(n, ast.BoolOp):
            other = ast.Or if isinstance(n.op, ast.And) else ast.And
            self._replace_expr("boolean", n,
                               lambda n=n, other=other: ast.BoolOp(op=other(), values=n.values),
                               loop)
        elif isinstance(n, ast.UnaryOp):
            if isinstance(n.op, ast.Not):
                self._replace_expr("boolean", n, lambda n=n: n.operand, loop)
            elif isinstance(n.op, ast.USub) and not isinstance(n.operand, ast.Constant):
                self._replace_expr("arithmetic", n, lambda n=n: n.operand, loop)
        elif isinstance(n, ast.BinOp):
            swap = _BIN_SWAPS.get(type(n.op))
            if swap is not None:
                self._replace_expr(
                    "arithmetic", n,
                    lambda n=n, swap=swap: ast.BinOp(left=n.left, op=swap(), right=n.right),
                    loop,
                )
        elif isinstance(n, ast.IfExp):
            self._condition(n.test, loop)
        elif isinstance(n, ast.comprehension):
            for cond in n.ifs:
                self._condition(cond, loop)
        elif isinstance(n, ast.Call):
            self._call(n, loop)
        elif isinstance(n, ast.Slice):
            for bound in (n.lower, n.upper):
                if bound is not None:
                    self._add("slice", bound, self._wrapped(bound, "({}) + 1"), loop)

    def _constant(self, n: ast.Constant, loop: bool) -> None:
        value = n.value
        if isinstance(value, bool):
            new: Any = not value
        elif isinstance(value, int):
            new = 0 if value == 1 else value + 1
        elif isinstance(value, float):
            new = value + 1.0
        elif isinstance(value, str):
            new = value + "X"
        else:
            return
        self._add("constant", n, lambda new=new: "(" + repr(new) + ")", loop)

    def _call(self, n: ast.Call, loop: bool) -> None:
        if (
            len(n.args) == 1
            and not n.keywords
            and not isinstance(n.args[0], ast.Starred)
            and _call_name(n) not in _CONVERSIONS
        ):
            # ``sorted(xs)`` -> ``xs``, ``abs(x)`` -> ``x``: the call's work is skipped.
            self._add("skip_call", n, self._wrapped(n.args[0], "({})"), loop)
        func = n.func
        if (
            isinstance(func, ast.Attribute)
            and not n.keywords
            and not (isinstance(func.value, ast.Name) and func.value.id in self.modules)
        ):
            # ``s.strip()`` -> ``s``, ``items.pop()`` -> ``items``: the method is skipped.
            self._add("skip_call", n, self._wrapped(func.value, "({})"), loop)
        if isinstance(n.func, ast.Name):
            if n.func.id in _CALL_SWAPS:
                self._add("swap_call", n.func, _CALL_SWAPS[n.func.id], loop)
            if n.func.id == "range" and n.args and not any(
                isinstance(a, ast.Starred) for a in n.args
            ):
                stop = n.args[0] if len(n.args) == 1 else n.args[1]
                self._add("range", stop, self._wrapped(stop, "({}) + 1"), loop)
                if len(n.args) >= 2:
                    self._add("range", n.args[0], self._wrapped(n.args[0], "({}) + 1"), loop)


def _count_returns(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    count = 0
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            count += 1
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))
    return count


def _sites(code: str) -> tuple[Source, list[_Site]]:
    tree = parse(code)
    if tree is None:
        return Source(code), []
    walker = _Sites(code, tree)
    return walker.src, walker.run()


def _render(src: Source, site: _Site) -> Mutant | None:
    text = site.make()
    if text is None:
        return None
    mutated = src.replace(site.start, site.end, text)
    if site.operator == "remove_branch":
        description = f"line {site.line}: {site.before()} -> `pass`"
    else:
        shown = text
        if site.operator in ("constant", "comparison", "boolean", "arithmetic") and (
            shown.startswith("(") and shown.endswith(")")
        ):
            shown = shown[1:-1]
        description = f"line {site.line}: `{_short(site.before())}` -> `{_short(shown)}`"
    return Mutant(mutated, site.operator, site.line, description, site.risky)


def _distinct(src: Source, sites: list[_Site]) -> Iterator[Mutant]:
    # Every replacement is a parenthesised expression, ``pass``, ``return None`` or a
    # statement of the same kind in place of a whole node, so the result parses; the
    # sandbox would report a mutant that does not as a SyntaxError all the same.
    seen = {src.text}
    for site in sites:
        mutant = _render(src, site)
        if mutant is None or mutant.code in seen:
            continue
        seen.add(mutant.code)
        yield mutant


def all_mutants(code: str) -> list[Mutant]:
    """Every distinct mutant of ``code``, in source order; [] when it does not parse."""
    src, sites = _sites(code)
    return list(_distinct(src, sites))


def count_sites(code: str) -> int:
    """How many places an operator applies to (an upper bound of the distinct mutants)."""
    return len(_sites(code)[1])


def select_mutants(code: str, n: int, seed: int = 0) -> list[Mutant]:
    """Up to ``n`` distinct mutants of ``code``, drawn with a seeded choice.

    The draw takes operators in turn (in a seeded order), a random place for each, so
    that a few constants cannot crowd out every other kind of edit. The result lists
    safe mutants first and ``risky`` ones last, each group in draw order.
    """
    if n <= 0:
        return []
    src, sites = _sites(code)
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()
    rng = random.Random(f"{seed}:{digest}")
    groups: dict[str, list[_Site]] = {}
    for site in sites:
        groups.setdefault(site.operator, []).append(site)
    order = sorted(groups)
    rng.shuffle(order)
    for name in order:
        rng.shuffle(groups[name])
    drawn: list[_Site] = []
    while any(groups.values()):
        for name in order:
            if groups[name]:
                drawn.append(groups[name].pop())
    chosen: list[Mutant] = []
    for mutant in _distinct(src, drawn):
        chosen.append(mutant)
        if len(chosen) == n:
            break
    return [m for m in chosen if not m.risky] + [m for m in chosen if m.risky]
