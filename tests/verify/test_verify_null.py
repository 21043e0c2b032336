"""The null implementation: same shape, every function returns None."""

from __future__ import annotations

import ast

from selfalign.verify.null import null_implementation

SOLUTION = '''
import functools

LIMIT = 10


def add(a, b=LIMIT, *rest, scale=1, **opts):
    """Docstring."""
    return (a + b) * scale


class Stack:
    size = 0

    def __init__(self):
        self.items = []

    @property
    def top(self):
        return self.items[-1]

    @staticmethod
    def make():
        return Stack()

    async def fetch(self):
        return 1

    def gen(self):
        yield 1


square = lambda x: x * x
OPS = {"neg": lambda x: -x}


@functools.lru_cache(maxsize=None)
def fib(n):
    def inner(k):
        return k
    return inner(n) if n < 2 else fib(n - 1) + fib(n - 2)
'''


def _run(code: str) -> dict:
    ns: dict = {}
    exec(compile(code, "<null>", "exec"), ns)
    return ns


def test_every_function_and_method_returns_none_and_still_binds() -> None:
    null = null_implementation(SOLUTION)
    assert null is not None and null.applicable
    assert set(null.nulled) >= {"add", "Stack.__init__", "Stack.top", "Stack.make",
                                "Stack.fetch", "Stack.gen", "<lambda>", "fib"}
    ns = _run(null.code)
    assert ns["LIMIT"] == 10 and ns["Stack"].size == 0  # other statements stay
    assert ns["add"](1) is None and ns["add"](1, 2, 3, scale=2, extra=1) is None
    stack = ns["Stack"]()
    assert stack.top is None and ns["Stack"].make() is None and stack.gen() is None
    assert ns["square"](3) is None and ns["OPS"]["neg"](1) is None
    assert ns["fib"](10) is None and ns["fib"].cache_info  # decorators kept
    # Nested functions go with the body they were in.
    assert "inner" not in null.code


def test_null_keeps_signatures() -> None:
    null = null_implementation(SOLUTION)
    assert null is not None
    tree = ast.parse(null.code)
    add = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "add")
    assert [a.arg for a in add.args.args] == ["a", "b"] and add.args.vararg is not None
    assert [a.arg for a in add.args.kwonlyargs] == ["scale"] and add.args.kwarg is not None
    assert len(add.body) == 1 and isinstance(add.body[0], ast.Return)


def test_no_function_and_bad_code() -> None:
    null = null_implementation("X = 1\nY = [X] * 3\n")
    assert null is not None and not null.applicable and null.code == "X = 1\nY = [X] * 3\n"
    assert null_implementation("def broken(:\n") is None
